import Foundation
import Mizu
import MizuTestSupport
import Testing

/// The router's defaults that Go mizu documents: request logging, logged 500s, strict JSON binding.
@Suite(.timeLimit(.minutes(10))) struct GoDefaultsTests {
    @Test func anAppLogsEachRequestByDefault() async throws {
        let log = CapturedLog()
        let app = App(logger: log.logger)
        app.get("/hello") { c in try await c.text(.ok, "hi") }
        try await withServer(app) { (port: Int) async throws in
            _ = try await request(port: port, "GET", "/hello")
            _ = try await request(port: port, "GET", "/missing")
        }
        let lines = log.all.filter { $0.level == .info }.map(\.message)
        #expect(lines.contains { $0.hasPrefix("GET /hello 200 ") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("GET /missing 404 ") }, "\(lines)")
    }

    @Test func requestLoggingCanBeTurnedOff() async throws {
        let log = CapturedLog()
        let app = App(logger: log.logger, logsRequests: false)
        app.get("/hello") { c in try await c.text(.ok, "hi") }
        try await withServer(app) { (port: Int) async throws in
            #expect(try await request(port: port, "GET", "/hello").status == 200)
        }
        #expect(!log.all.contains { $0.message.hasPrefix("GET /hello") })
    }

    struct DatabaseDown: Error, CustomStringConvertible {
        var description: String { "connection refused by db-7" }
    }

    @Test func theDefaultErrorHandlerLogsWhatItTurnsIntoA500() async throws {
        let log = CapturedLog()
        let app = App(logger: log.logger, logsRequests: false)
        app.get("/boom") { _ in throw DatabaseDown() }
        app.get("/gone") { _ in throw HTTPError(.gone, "gone") }
        app.get("/left") { _ in throw ResponseWriter.Error.connectionClosed }
        try await withServer(app) { (port: Int) async throws in
            let boom = try await request(port: port, "GET", "/boom")
            #expect(boom.status == 500 && boom.text == "internal server error\n", "the body never carries the error")
            #expect(try await request(port: port, "GET", "/gone").status == 410)
            _ = try await request(port: port, "GET", "/left")
        }
        let errors = log.all.filter { $0.level == .error }
        #expect(errors.count == 1, "an HTTPError is an answer and a client leaving is not our failure: \(errors.map(\.metadata))")
        #expect(errors.first?.metadata["error"] == "connection refused by db-7")
        #expect(errors.first?.metadata["path"] == "/boom")
    }

    struct Signup: Codable {
        struct Profile: Codable { var nickname: String }
        struct Device: Codable { var id: Int }
        var name: String
        var age: Int?
        var profile: Profile
        var devices: [Device] = []
        var tags: [String: String] = [:]
        var avatar: Data?
        var joined: Date?

        enum CodingKeys: String, CodingKey { case name, age, profile, devices, tags, avatar, joined }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.name = try c.decode(String.self, forKey: .name)
            self.age = try c.decodeIfPresent(Int.self, forKey: .age)
            self.profile = try c.decode(Profile.self, forKey: .profile)
            self.devices = try c.decodeIfPresent([Device].self, forKey: .devices) ?? []
            self.tags = try c.decodeIfPresent([String: String].self, forKey: .tags) ?? [:]
            self.avatar = try c.decodeIfPresent(Data.self, forKey: .avatar)
            self.joined = try c.decodeIfPresent(Date.self, forKey: .joined)
        }
    }

    private func bind(_ body: String, allowUnknownFields: Bool = false) async throws -> HTTPTestResponse {
        let app = App(logsRequests: false)
        app.post("/signup") { c in
            let signup = try c.bindJSON(Signup.self, allowUnknownFields: allowUnknownFields)
            let detail = "\(signup.name) \(signup.profile.nickname) \(signup.devices.map(\.id)) \(signup.tags.count)"
            try await c.text(.ok, detail + " \(signup.avatar.map { Array($0) } ?? []) \(signup.joined?.timeIntervalSinceReferenceDate ?? -1)")
        }
        return try await withServer(app) { (port: Int) async throws in
            try await request(port: port, "POST", "/signup", body: body)
        }
    }

    @Test func bindJSONRefusesUnknownFieldsAtEveryDepthAsGoDoes() async throws {
        let cases = [
            (#"{"name":"a","profile":{"nickname":"n"},"admin":true}"#, "admin"),
            (#"{"name":"a","profile":{"nickname":"n","role":"root"}}"#, "profile.role"),
            (#"{"name":"a","profile":{"nickname":"n"},"devices":[{"id":1},{"id":2,"x":0}]}"#, "devices.1.x"),
        ]
        for (body, path) in cases {
            let response = try await self.bind(body)
            #expect(response.status == 400 && response.text == "unknown field \"\(path)\"\n", "\(body): \(response.status) \(response.text)")
        }
    }

    @Test func bindJSONStillDecodesEverythingAKnownShapeHolds() async throws {
        // Optional members missing, a dictionary (any keys are its own), Data as base64 and a
        // Date as JSONDecoder's defaults read them: none of these is an unknown field.
        let body = #"{"name":"a","profile":{"nickname":"n"},"devices":[{"id":3}],"tags":{"any":"x","key":"y"},"avatar":"AQI=","joined":5}"#
        let response = try await self.bind(body)
        #expect(response.status == 200 && response.text == "a n [3] 2 [1, 2] 5.0", "\(response.text)")
    }

    @Test func unknownFieldsPassWhenAllowed() async throws {
        let response = try await self.bind(#"{"name":"a","profile":{"nickname":"n","role":"root"},"admin":true}"#, allowUnknownFields: true)
        #expect(response.status == 200, "\(response.text)")
    }

    @Test func bindJSONRefusesTrailingDataAsGoDoes() async throws {
        let response = try await self.bind(#"{"name":"a","profile":{"nickname":"n"}} {}"#)
        #expect(response.status == 400, "\(response.text)")
    }
}
