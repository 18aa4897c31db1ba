#!/usr/bin/env bash
# Mutation testing, by hand (not CI): each mutation below is one small deliberate bug in code
# that handles untrusted input, limits, negotiation, auth or fan-out. Each is applied alone to
# a scratch copy of the working tree, the tests that guard it run, and the mutant is "killed"
# when they fail. The score and the survivors are printed; record them in TESTING.md.
#   bash scripts/mutants.sh            every mutation (about 40 incremental builds)
#   bash scripts/mutants.sh NAME...    only these
# The scratch copy (.build-mutants/) keeps its own build folder, so each build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# --check only verifies, in the working tree, that every mutation's text is still in its file
# (the test script runs it: a refactor must not leave mutants that no longer apply).
if [ "${1:-}" != "--check" ]; then
  scratch="$root/.build-mutants/tree"
  mkdir -p "$scratch"
  # The working tree as it is (tracked and new files, no build output). Files deleted or moved
  # since the last run must not linger in the copy (a stale source still compiles): the source
  # folders are copied afresh, with their times, so the build stays incremental.
  rm -rf "$scratch/Sources" "$scratch/Tests" "$scratch/Examples" "$scratch/Benchmarks" "$scratch/Fuzz"
  git ls-files -co --exclude-standard -z | rsync -a --delete-missing-args --from0 --files-from=- ./ "$scratch/"
  export CHATAPP_BIN="$scratch/.build/debug/ChatApp"
  cd "$scratch"
fi
exec python3 - "$@" <<'PY'
import subprocess, sys, time, pathlib

# (name, file, original text, mutated text, what runs: a swift test filter, or pytest:<-k expr>)
MUTATIONS = [
    ("origin-empty-list-allows-all", "Sources/MizuLive/Live/Options.swift",
     "return Self.isSameOrigin(origin, host: request.header(\"host\"), secure: request.isSecure)", "return true", "LiveContract|SameOrigin"),
    ("origin-ignores-scheme", "Sources/MizuLive/Live/Options.swift",
     "components.scheme?.lowercased() == (secure ? \"https\" : \"http\"),", "components.scheme != nil,", "SameOrigin"),
    ("auth-before-upgrade-check", "Sources/MizuLive/Live/LiveHTTPHandler.swift",
     "try WebSocketHandshake.checkUpgradeRequest(request)", "if request.method == .PUT { try WebSocketHandshake.checkUpgradeRequest(request) }", "SeedFidelity"),
    ("head-timer-restarted-on-every-read", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "if wanted != self.armed {", "if wanted != self.armed || wanted == .head {", "HostileHTTP|HTTPConnectionStateMachine"),
    ("no-body-deadline", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "case .body: return .body", "case .body: return nil", "HostileHTTP"),
    ("reads-after-upgrade-or-connect", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "guard self.writable, !self.upgrading, self.input != .stopped else { return false }", "guard self.writable, !self.upgrading else { return false }", "HostileHTTP"),
    ("http-reads-while-unwritable", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "guard self.writable, !self.upgrading, self.input != .stopped else { return false }", "guard !self.upgrading, self.input != .stopped else { return false }", "HostileHTTP"),
    ("write-stall-never-closes", "Sources/MizuHTTP/Connection/WriteStallWatch.swift",
     "if buffered < bufferedBefore || self.progressed {", "if true {", "HostileHTTP|HostileWebSocket"),
    ("missing-host-accepted", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "if hosts > 1 || (hosts == 0 && (head.version.major, head.version.minor) >= (1, 1)) {", "if hosts > 1 {", "HostileHTTP"),
    ("unknown-transfer-coding-accepted", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "if codings.count > 1 { return (.notImplemented", "if false { return (.notImplemented", "HostileHTTP"),
    ("any-expectation-accepted", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "if let expect, expect.lowercased() != \"100-continue\" {", "if let expect, expect.isEmpty, expect.lowercased() != \"100-continue\" {", "HTTPContract|HTTPConnectionStateMachine"),
    ("body-limit-off-by-one", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "guard self.body.readableBytes + chunk.readableBytes <= self.maxBodySize else {", "guard self.body.readableBytes + chunk.readableBytes < self.maxBodySize else {", "Connection|HTTPContract"),
    ("head-size-unlimited", "Sources/MizuHTTP/Wire/HTTPRequestParser.swift",
     "self.maxHeadSize = maxHeadSize", "self.maxHeadSize = 1 << 24", "ConnectionTests|HTTPRequestParser"),
    ("parser-accepts-bare-lf", "Sources/MizuHTTP/Wire/HTTPRequestParser.swift",
     "guard index > 0, bytes[index - 1] == Byte.cr else { return .malformed(\"a line ends with LF alone\") }",
     "if index == 0 || bytes[index - 1] != Byte.cr { index += 1; continue }", "HTTPRequestParser"),
    ("parser-length-with-chunked", "Sources/MizuHTTP/Wire/HTTPRequestParser.swift",
     "guard contentLength == nil else { return refuse(\"both Content-Length and Transfer-Encoding\") }", "", "HTTPRequestParser"),
    ("parser-second-length-wins", "Sources/MizuHTTP/Wire/HTTPRequestParser.swift",
     "guard lengthFields == 1, let length = ClientNumber.saturating(value)", "guard let length = ClientNumber.saturating(value)", "HTTPRequestParser|ConnectionTests"),
    ("parser-chunk-size-wraps", "Sources/MizuHTTP/Wire/HTTPRequestParser+Chunked.swift",
     "let (shifted, overflow) = size.multipliedReportingOverflow(by: 16)", "let (shifted, overflow) = (size &* 16, false)", "HTTPRequestParser"),
    ("upgrade-drops-early-bytes", "Sources/MizuHTTP/Connection/HTTPConnectionHandler.swift",
     "if leftover.readableBytes > 0 {", "if leftover.readableBytes < 0 {", "Compat"),
    ("head-answer-gets-terminator", "Sources/MizuHTTP/Wire/HTTPResponseFramer.swift",
     "self.bodyless = headRequest\n", "self.bodyless = false\n", "HTTPContract|HTTPResponseFramer"),
    ("expect-continue-to-http10", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "let expect = (head.version.major, head.version.minor) >= (1, 1) ? head.headers.first(name: \"expect\") : nil",
     "let expect = head.headers.first(name: \"expect\")", "HTTPConnectionStateMachine"),
    ("host-not-validated", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "!HostField.isValid(host)", "host.isEmpty && false", "HTTPConnectionStateMachine|HostileHTTP"),
    ("if-range-ignored", "Sources/Mizu/Router/StaticFiles.swift",
     ", Self.rangeApplies(ctx.request, etag: etag, modified: modified) {", " {", "StaticFiles"),
    ("timeout-cut-waits-for-handler", "Sources/Mizu/Middleware/Timeout.swift",
     "ctx.writer.cut()", "ctx.writer.abandon()", "StreamingTests"),
    ("no-lingering-close", "Sources/MizuHTTP/Connection/HTTPConnectionHandler.swift",
     "self.machine.finalAnswerWritten(canHalfClose: !self.secure && context.channel.isActive)",
     "self.machine.finalAnswerWritten(canHalfClose: false)", "anEarlyErrorAnswer"),
    ("response-splitting", "Sources/MizuHTTP/Wire/HTTPResponseFramer.swift",
     "buffer.writeInteger(byte == 13 || byte == 10 || byte == 0 ? UInt8(ascii: \" \") : byte)", "buffer.writeInteger(byte)", "HTTPResponseFramer"),
    ("head-answer-carries-body", "Sources/MizuHTTP/Messages/ResponseWriter.swift",
     "if bodyAllowed, !self.isHead, state.body.readableBytes > 0", "if bodyAllowed, state.body.readableBytes > 0", "HTTPContract|Router"),
    ("router-no-backtracking", "Sources/Mizu/Router/RouteTree.swift",
     "if let child = node.staticChildren[segment], let found = match(node: child, segments: rest, parameters: &parameters) {\n            return found\n        }",
     "if let child = node.staticChildren[segment] {\n            return match(node: child, segments: rest, parameters: &parameters)\n        }", "HTTPContract|Router"),
    ("ws-reads-while-unwritable", "Sources/MizuWebSocket/Connection/WebSocketConnectionStateMachine.swift",
     "var mayRead: Bool { self.receives && self.writable && !self.applicationPaused }", "var mayRead: Bool { self.receives && !self.applicationPaused }", "HostileWebSocket"),
    ("ws-no-close-deadline-after-error", "Sources/MizuWebSocket/Connection/WebSocketChannelHandler.swift",
     "self.closeTimer = context.eventLoop.scheduleTask(in: self.configuration.closeTimeout) {", "self.closeTimer = context.eventLoop.scheduleTask(in: thenCloseTCP ? .hours(1) : self.configuration.closeTimeout) {", "HostileWebSocket"),
    ("ws-write-stall-not-acted-on", "Sources/MizuWebSocket/Connection/WebSocketChannelHandler.swift",
     "self.carryOut(self.machine.abort(.writeTimeout))", "_ = self.machine", "HostileWebSocket"),
    ("ws-pong-order-broken", "Sources/MizuWebSocket/Connection/WebSocketChannelHandler.swift",
     "if self.machine.writable { self.sendPendingPong() }", "if false { self.sendPendingPong() }", "HostileWebSocket"),
    ("ws-handshake-body-accepted", "Sources/MizuWebSocket/Handshake/WebSocketHandshake.swift",
     "throw WebSocketHandshakeError(status: .badRequest, reason: \"a WebSocket handshake carries no body\", headers: [])", "_ = 0", "HostileWebSocket"),
    ("ws-unmasked-frames-accepted", "Sources/MizuWebSocket/Framing/FrameParser.swift",
     "case .server: guard masked else { throw .protocolError(\"unmasked client frame\") }", "case .server: break", "Frame|LiveServer|WebSocketEndpoint"),
    ("ws-frame-at-limit-refused", "Sources/MizuWebSocket/Framing/FrameParser.swift",
     "guard length <= self.maxPayloadLength else { throw .messageTooLarge }", "guard length < self.maxPayloadLength else { throw .messageTooLarge }", "LiveContract|Frame"),
    ("ws-text-utf8-unchecked", "Sources/MizuWebSocket/Framing/MessageAssembler.swift",
     "try Self.validate(&partial.utf8, payload, from: payload.readerIndex)", "_ = payload", "MessageAssembler|WebSocketEndpoint|LiveServer"),
    ("ws-inflate-unbounded", "Sources/MizuWebSocket/Framing/MessageAssembler.swift",
     "try inflater.inflate(input, into: &output, limit: self.maxMessageSize)", "try inflater.inflate(input, into: &output, limit: Int.max)", "MessageAssembler|WebSocketEndpoint|Deflate"),
    ("ws-invalid-close-code-sent", "Sources/MizuWebSocket/Connection/WebSocketConnection.swift",
     "let code = Self.isSendable(code) ? code : 1000", "let code = code", "SeedFidelity"),
    ("heartbeat-off-by-default", "Sources/MizuLive/Live/Options.swift",
     "public var heartbeatInterval: TimeAmount? = .seconds(25)", "public var heartbeatInterval: TimeAmount? = nil", "HostileLive"),
    ("window-bits-ignored", "Sources/MizuWebSocket/Connection/BroadcastFrame.swift",
     ".sharedCompressed(windowBits: deflate.serverMaxWindowBits)", ".sharedCompressed(windowBits: 15)", "LiveContract|HostileLive"),
    ("deflater-keeps-context", "Sources/MizuWebSocket/Deflate/DeflaterCache.swift",
     "keepContext: false", "keepContext: true", "LiveContract"),
    ("send-does-not-throw-queue-full", "Sources/MizuLive/Live/Session.swift",
     "guard self.sendEncoded(CollectionOfOne(payload)) else { throw .queueFull }", "_ = self.sendEncoded(CollectionOfOne(payload))", "LiveContract|LiveCore"),
    ("peer-1001-is-an-error", "Sources/MizuLive/Live/LiveError.swift",
     "guard let code, code != 1000, code != 1001 else { return nil }", "guard let code, code != 1000 else { return nil }", "LiveContract"),
    ("publish-to-one-event-loop", "Sources/MizuLive/Live/FanOut.swift",
     "for (eventLoop, connections) in buckets {", "for (eventLoop, connections) in buckets.prefix(1) {", "LiveContract|LiveCore"),
    ("topic-cap-off", "Sources/MizuLive/Live/Session.swift",
     "guard state.topics.count < limit, self.core.limiter.takeSubscription(client) else { return nil }", "guard self.core.limiter.takeSubscription(client) else { return nil }", "HostileLive"),
    ("invalid-json-published", "Sources/MizuLive/Live/ServerCore.swift",
     "if Live.Message.isValidData(data) { return true }", "if true { return true }", "SeedFidelity"),
    ("bad-message-reply-out-of-order", "Sources/MizuLive/Live/SessionOpening.swift",
     "session.enqueue(.bad(Data(message.data.readableBytesView)))", "try? session.send(Live.Message(topic: \"error\", data: Data(#\"\"bad message\"\"#.utf8)))", "SeedFidelity"),
    ("reads-never-pause-for-the-app", "Sources/MizuLive/Live/Session.swift",
     "if waiting.isAbove(Self.inboxHighWater, bytes: Self.inboxHighWaterBytes),", "if false,", "LiveContract|HostileLiveBounds"),
    ("onopen-not-first", "Sources/MizuLive/Live/SessionOpening.swift",
     "if self.core.options.onOpen != nil { session.enqueue(.open) }", "if self.core.options.onOpen != nil { Task { await session.runHook(.open) } }", "LiveContract|LiveSessionLoop"),
    ("redis-backoff-reset-by-handshake", "Sources/MizuLive/Backplane/ReconnectBackoff.swift",
     "self.connectedAt = now\n", "self.connectedAt = now\n        self.failures = 0\n", "RedisReconnect"),
    ("redis-delay-uncapped", "Sources/MizuLive/Backplane/ReconnectBackoff.swift",
     "let full = overflow ? cap : min(cap, grown)", "let full = grown", "RedisReconnect"),
    ("redis-delay-wraps", "Sources/MizuLive/Backplane/ReconnectBackoff.swift",
     "let full = overflow ? cap :", "let full = overflow ? grown :", "RedisReconnect"),
    ("redis-non-json-delivered", "Sources/MizuLive/Backplane/RedisBroker+Subscriptions.swift",
     "guard JSONScanner.isValue(data) else {", "guard true else {", "RedisBackplane"),
    ("chatapp-unsubscribe-does-nothing", "Sources/MizuLive/Commands/ServerCore+Commands.swift",
     "session.unsubscribe(request.topic)", "_ = request", "pytest:unsubscribe"),
    ("chatapp-own-user-topic-refused", "Examples/ChatApp/Chat.swift",
     "|| topic == \"user:\" + userID", "|| false", "pytest:subscription_rules"),
    ("recovery-replays-covered-messages-again", "Sources/MizuLive/History/ServerCore+History.swift",
     "let newer = read.map { read in waiting.drop { $0.offset <= read.top } } ?? waiting[...]", "let newer = waiting[...]", "HistoryTests|RedisHistoryPresence"),
    ("recovery-drops-messages-published-meanwhile", "Sources/MizuLive/Live/TopicRegistry.swift",
     "topics[topic]!.recovering[key]!.waiting.append((position.offset, payload))", "_ = payload", "HistoryTests|RedisHistoryPresence"),
    ("recovery-reads-before-redis-subscribed", "Sources/MizuLive/History/ServerCore+History.swift",
     "            try await self.history.ready(topic)", "            _ = self.history", "RedisHistoryPresence"),
    ("recovered-with-another-epoch", "Sources/MizuLive/History/HistoryPolicy.swift",
     "guard since.epoch == self.epoch, since.offset <= self.top else { return false }", "guard since.offset <= self.top else { return false }", "HistoryTests"),
    ("history-not-trimmed-to-size", "Sources/MizuLive/History/MemoryHistory.swift",
     "var excess = stream.entries.count - policy.size", "var excess = 0", "HistoryTests"),
    ("presence-member-kept-after-close", "Sources/MizuLive/Live/Session.swift",
     "                self.core.left(self, topics)\n", "", "PresenceTests"),
    ("presence-never-refreshed", "Sources/MizuLive/Presence/PresenceStore.swift",
     "for (topic, members) in self.local.all { self.shared.presenceJoin(topic, members, expiry: self.expiry) }", "_ = self.local", "RedisHistoryPresence|HistoryPresenceStore"),
    ("gzip-despite-q-zero", "Sources/MizuHTTP/Messages/ResponseCompression.swift",
     "if name == \"gzip\" || name == \"x-gzip\" { return weight > 0 }", "if name == \"gzip\" || name == \"x-gzip\" { return true }", "GzipTests"),
    ("timeout-waits-for-the-handler", "Sources/Mizu/Middleware/Timeout.swift",
     "guard let handlerFinished = try await group.next(), !handlerFinished else { return }", "try await group.waitForAll(); return", "StreamingTests"),
    ("failed-stream-looks-complete", "Sources/MizuHTTP/Connection/HTTPRequestRunner.swift",
     "                    writer.abandon()\n", "", "StreamingTests"),
    # Issue 25's seams: the stores, the HTTP machine's actions, one slow-consumer rule.
    ("shared-presence-leave-unconditional", "Sources/MizuLive/Presence/PresenceStore.swift",
     "guard self.local.leave(topic, id: id) else { return false }", "_ = self.local.leave(topic, id: id)", "HistoryPresenceStore|RedisHistoryPresence"),
    ("memory-history-not-forwarded", "Sources/MizuLive/History/HistoryStore.swift",
     "return self.broker?.tryPublish(topic, data) ?? true", "return true", "HistoryPresenceStore|HistoryTests|BrokerTests"),
    ("held-read-never-granted", "Sources/MizuHTTP/Connection/HTTPConnectionStateMachine.swift",
     "if self.readHeld && self.mayRead {", "if false && self.mayRead {", "HTTPConnectionStateMachine|HTTPConnectionHandler|HostileHTTP"),
    ("continuity-tracks-unwanted-topics", "Sources/MizuLive/Backplane/RedisBroker+Continuity.swift",
     "guard links.confirmed.contains(topic) else { return }\n        if let waiting = links.awaitingHandOver[topic] {", "if let waiting = links.awaitingHandOver[topic] {", "RedisHistoryPresence|BackplaneContinuity"),
    ("continuity-tracks-unconfirmed-topics", "Sources/MizuLive/Backplane/RedisBroker+Continuity.swift",
     "guard links.confirmed.contains(topic) else { return }", "guard links.wanted.contains(topic) else { return }", "BackplaneContinuity"),
    # Issue 27: the cluster broker's mechanisms, each removed alone.
    ("cluster-refused-commands-dropped", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Redirects.swift",
     "held.refused.append(Redirected(command: command, slot: slot, since: .now()))", "_ = command", "RedisClusterTests"),
    ("cluster-new-publishes-not-held", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Redirects.swift",
     "guard held.slots.contains(slot) else {", "guard false, held.slots.contains(slot) else {", "RedisClusterTests"),
    ("cluster-retired-outbox-lost", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Topology.swift",
     "retired.map { shard in { await shard.retire() } }", "retired.map { shard in { _ = await shard.retire(); return [] } }", "RedisClusterTests"),
    ("cluster-moved-topic-forgets-position", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Topology.swift",
     "oldShard.handOver(topic, to: newShard)", "oldShard.handOver(topic, to: nil)", "RedisClusterTests"),
    ("cluster-keys-untagged", "Sources/MizuLive/Backplane/RedisKeyspace.swift",
     "self.sharded ? self.prefix + ClusterSlot.hashTag(forTopic: topic) + \":\" + kind : self.prefix + kind + \":\" + topic", "self.prefix + kind + \":\" + topic", "RedisClusterTests"),
    ("cluster-publish-order-unchecked", "Sources/MizuLive/Backplane/RedisBroker+SharedState.swift",
     "let order = self.sharedOrder?.next(topic) ?? (sequence, 0)", "let order = self.sharedOrder.map { ($0.next(topic).sequence, UInt64(0)) } ?? (sequence, 0)", "PublishOrderTests"),
    ("cluster-held-predecessors-never-settled", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Redirects.swift",
     "            held.settlePredecessors()\n", "", "PublishOrderTests"),
    ("rewound-stream-publisher-floor-unsent", "Sources/MizuLive/Backplane/RedisBroker+SharedState.swift",
     "String(order.sequence), self.keyspace.publishCommand, floor?.epoch ?? \"\", String(floor?.offset ?? 0),", "String(order.sequence), self.keyspace.publishCommand, \"\", \"0\",", "StreamRewindTests"),
    ("rewound-stream-unnoticed-by-subscribers", "Sources/MizuLive/Backplane/StreamContinuity.swift",
     "            if epoch == stream.epoch, top < stream.offset {", "            if false, epoch == stream.epoch, top < stream.offset {", "StreamRewindTests"),
    ("cluster-ask-held-not-asked", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Redirects.swift",
     "if let importing, !held.slots.contains(slot), importing.enqueueAsking(command) {", "if false, let importing, !held.slots.contains(slot), importing.enqueueAsking(command) {", "anAskedPublish"),
    ("cluster-held-bytes-unbounded", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Redirects.swift",
     "guard held.bytes + Live.RedisBroker.publishScript.utf8.count + data.count + 512 <= self.configuration.node.maxPendingPublishBytes else {", "guard true else {", "publishesHeldForAnUnservedSlot"),
    ("cluster-barrier-on-redirecting-shard-only", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Redirects.swift",
     "            self.runBarriers(([shard] + others).map { each in { await each.barrier(heldSlots: self.heldSlots) } })",
     "            self.held.withLockedValue { $0.barriers -= others.count }\n            self.runBarriers([shard].map { each in { await each.barrier(heldSlots: self.heldSlots) } })", "ClusterBarrier"),
    ("cluster-map-read-waits-forever", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Topology.swift",
     "on: channel, timeout: configuration.node.connectTimeout).get()", "on: channel, timeout: .hours(1)).get()", "ClusterMapRead"),
    ("client-token-waited-forever", "Sources/MizuLiveClient/Client/LiveClient+Connecting.swift",
     "try await withAbandoningDeadline(limit, expired: { TokenExpired(limit: limit) }, provider)", "try await provider()", "aTokenProviderThatNeverAnswers"),
    ("second-signal-ignored", "Sources/Mizu/Router/App.swift",
     "if signal != 0 { ending.yield(signal) }", "_ = signal", "pytest:second_sigterm"),
    ("signal-action-not-put-back", "Sources/Mizu/Router/SignalWatcher.swift",
     "for number in self.signals { Self.restore(number) }", "_ = self.signals", "theLastWatcherToStop"),
    ("client-queued-call-waits-forever", "Sources/MizuLiveClient/Client/ClientCore.swift",
     "if case .call = kind { request.timeout = self.scheduleQueuedTimeout(id) }", "if case .call = kind {}", "aCallWhileTheServerIsAway"),
    ("client-timed-out-call-keeps-its-place", "Sources/MizuLiveClient/Client/ClientCore.swift",
     "state.unsent.remove(at: place)", "_ = place", "aCallWhileTheServerIsAway"),
    ("cluster-barrier-ignores-lost-link", "Sources/MizuLive/Backplane/RedisBroker.swift",
     "let slots = heldSlots()", "let slots = Set<Int>()", "ClusterBarrier"),
    ("cluster-held-not-in-publish-order", "Sources/MizuLive/Backplane/Cluster/RedisClusterBroker+Redirects.swift",
     "entries.sort { ($0.order?.sequence ?? 0) < ($1.order?.sequence ?? 0) }", "_ = entries", "PublishOrder"),
    ("retired-expired-replays-uncounted", "Sources/MizuLive/Backplane/RedisOutbox.swift",
     "            } else if case .discard(let count) = replay.request.replies {\n                expired += count\n            }",
     "            } else if case .discard(let count) = replay.request.replies {\n                _ = count\n            }", "RedisOutbox"),
    ("full-queue-left-open", "Sources/MizuWebSocket/Connection/WebSocketConnection.swift",
     "            self.closeAsSlowConsumer()\n            return .queueFull", "            return .queueFull", "WebSocketChannelHandler|LiveCore"),
    ("messages-not-paced", "Sources/MizuLive/Live/Session.swift",
     "if item.isClientMessage, let wait", "if item.isClientMessage, false, let wait", "HostileLive"),
    ("owed-turns-not-queued", "Sources/MizuLive/Live/ConnectionLimiter.swift",
     "            client.messageTokens = tokens\n", "            client.messageTokens = max(0, tokens)\n", "ConnectionLimit"),
    ("coalesced-not-handed-over-before-control", "Sources/MizuWebSocket/Connection/WebSocketChannelHandler.swift",
     "        self.writeCoalesced()\n        context.write(self.wrapOutboundOut(self.frame(opcode", "        context.write(self.wrapOutboundOut(self.frame(opcode", "StraightWrite"),
    ("frames-not-coalesced", "Sources/MizuWebSocket/Connection/WebSocketChannelHandler.swift",
     "        guard let heldBytes = self.coalesced?.readableBytes else {\n            self.coalesced = copy frame\n            return\n        }",
     "        guard let heldBytes = self.coalesced?.readableBytes else {\n            self.coalesced = copy frame\n            self.writeCoalesced()\n            return\n        }", "StraightWrite"),
    ("large-held-frame-copied-into-batch", "Sources/MizuWebSocket/Connection/WebSocketChannelHandler.swift",
     "        } else if small, heldBytes <= Self.coalescedFrameLimit {", "        } else if small {", "StraightWrite"),
    ("closed-session-keeps-waiting-its-turn", "Sources/MizuLive/Live/Session.swift",
     "                if self.isClosed { return false }", "                if false, self.isClosed { return false }", "HostileLive"),
    ("sweep-forgets-message-debt", "Sources/MizuLive/Live/ConnectionLimiter.swift",
     "return limits.pacesMessages && client.messageTokens(at: now, limits) < limits.messageBucket", "return false", "ConnectionLimit"),
    # The connect path (issue 28, sixth pass): each mechanism removed alone.
    ("request-handler-queued-not-started", "Sources/MizuHTTP/Connection/HTTPRequestRunner.swift",
     "Task.startingNow(on: eventLoop) {", "Task.on(eventLoop) {", "HTTPConnectionHandlerTests"),
    ("later-head-without-deadline", "Sources/MizuHTTP/Connection/HTTPConnectionHandler.swift",
     "        if self.observer == nil, !self.headDecodedInThisRead { self.perform(self.machine.bytesArrived()) }\n", "", "HTTPConnectionHandlerTests"),
    ("head-deadline-after-a-complete-request", "Sources/MizuHTTP/Connection/HTTPConnectionHandler.swift",
     "if self.observer == nil, !self.headDecodedInThisRead {", "if self.observer == nil {", "HTTPConnectionHandlerTests"),
    ("shared-port-joins-another-listener", "Sources/MizuHTTP/Server/Listeners.swift",
     "        if port != 0 {", "        if port != 0 && false {", "ListenerTests"),
    ("listener-options-not-inherited", "Sources/MizuHTTP/Server/HTTPServer.swift",
     "        guard Self.acceptedSocketsInheritOptions else { return bootstrap }", "        return bootstrap", "ListenerTests"),
    ("flusher-takes-another-loops-connection", "Sources/MizuWebSocket/Connection/LoopFlusher.swift",
     "} else if armedLoop != ObjectIdentifier(eventLoop) {", "} else if false {", "StraightWrite"),
    # MizuLiveClient (issue 26): each mechanism of the client, removed alone.
    ("client-no-dedupe", "Sources/MizuLiveClient/Subscriptions/StreamTracker.swift",
     "if incoming.offset <= last.offset { return .duplicate }", "if incoming.offset < last.offset { return .duplicate }", "StreamTracker|ClientCore"),
    ("client-gap-not-resubscribed", "Sources/MizuLiveClient/Client/ClientCore+Frames.swift",
     "        case .gap:\n            self.resubscribe(message.topic, in: &state, &effects)", "        case .gap:\n            break", "ClientCore"),
    ("client-resubscribes-from-nowhere", "Sources/MizuLiveClient/Client/ClientCore.swift",
     "let after = record.tracker.resumePosition", "let after: StreamPosition? = nil", "LiveClientTests|ClientCore"),
    ("client-missed-hidden", "Sources/MizuLiveClient/Subscriptions/StreamTracker.swift",
     "return askedAfter != nil", "return false", "pytest:test_a_lost_history_is_said_with_missed"),
    ("client-retries-401", "Sources/MizuLiveClient/Connection/ReconnectPolicy.swift",
     "case 429, 503, 408, 500...599:", "case 401, 429, 503, 408, 500...599:", "pytest:test_unauthorized_exits_non_zero"),
    ("client-ignores-retry-after", "Sources/MizuLiveClient/Connection/ReconnectPolicy.swift",
     "guard let retryAfter, retryAfter >= 0 else { return .retry(after: backoff) }", "guard let retryAfter, retryAfter < 0 else { return .retry(after: backoff) }", "pytest:test_retry_after_of_a_503"),
    ("client-no-dead-connection-check", "Sources/MizuLiveClient/Client/LiveClient+Connecting.swift",
     "client.configuration.idleTimeout = configuration.deadConnectionTimeout.timeAmount", "_ = configuration.deadConnectionTimeout", "pytest:test_a_frozen_server"),
    ("client-queue-unbounded", "Sources/MizuLiveClient/Client/ClientCore.swift",
     "guard state.unsent.count < self.configuration.maxQueuedRequests,", "guard state.unsent.count >= 0,", "LiveClientTests"),
    ("client-slow-consumer-never-caught-up", "Sources/MizuLiveClient/Client/ClientCore.swift",
     "guard let record = state.subscriptions[topic], record.phase == .paused else { return }", "guard let record = state.subscriptions[topic], record.phase == .paused, false else { return }", "LiveClientTests"),
    ("client-publish-resent-after-loss", "Sources/MizuLiveClient/Protocol/ClientCommand.swift",
     "case .publish, .message: return false", "case .message: return false", "ClientCore"),
    ("client-drops-the-epoch-check", "Sources/MizuLiveClient/Subscriptions/StreamTracker.swift",
     "guard incoming.epoch == last.epoch else { return .gap }", "", "StreamTracker"),
]

if sys.argv[1:] == ["--check"]:
    stale = [m[0] for m in MUTATIONS if pathlib.Path(m[1]).read_text().count(m[2]) != 1]
    for name in stale:
        print(f"stale mutant: {name}: its original text is not in its file exactly once")
    print(f"{len(MUTATIONS) - len(stale)} of {len(MUTATIONS)} mutations apply")
    sys.exit(1 if stale else 0)

wanted = set(sys.argv[1:])
selected = [m for m in MUTATIONS if not wanted or m[0] in wanted]

def run(command, timeout):
    try:
        return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return 124

print("== baseline build")
if run("swift build --build-tests", 1800) != 0:
    sys.exit("the unmutated tree does not build")

killed, survived, invalid = [], [], []
for name, path, original, mutated, guard in selected:
    file = pathlib.Path(path)
    text = file.read_text()
    if text.count(original) != 1:
        invalid.append((name, "original text found %d times" % text.count(original)))
        print(f"?  {name}: original text not found exactly once")
        continue
    file.write_text(text.replace(original, mutated))
    start = time.time()
    try:
        if run("swift build --build-tests", 1800) != 0:
            invalid.append((name, "does not build"))
            print(f"?  {name}: the mutant does not build")
            continue
        if guard.startswith("pytest:"):
            status = run(f"timeout 300 python3 -m pytest -q -p no:cacheprovider -x Tests/ChatApp -k {guard[7:]}", 400)
        else:
            status = run(f"timeout 600 swift test --skip-build --filter '{guard}'", 700)
        (killed if status != 0 else survived).append(name)
        print(f"{'killed  ' if status != 0 else 'SURVIVED'} {name} ({guard}, {time.time() - start:.0f} s)", flush=True)
    finally:
        file.write_text(text)

total = len(killed) + len(survived)
print(f"\nscore: {len(killed)} killed / {total} ({len(survived)} survived, {len(invalid)} invalid)")
for name in survived:
    print("survived:", name)
for name, why in invalid:
    print("invalid:", name, "-", why)
PY
