// The allocation guard, in swift-nio's style: a release build that counts the heap
// allocations of the publish path exactly (a malloc counter for the measuring thread alone)
// and fails when any count exceeds its budget. Run by scripts/test.sh after the release
// builds:  swift build -c release --product AllocationGuard && .build/release/AllocationGuard
// A budget is today's count; a change that adds an allocation raises it here and says why.
// MIZU_ALLOCATION_TRACE=1 prints a backtrace per counted allocation, to find what to cut.
import CAllocationCounter
import Foundation
import NIOConcurrencyHelpers

guard mizu_allocation_counter_available() else {
    print("allocation guard: this build has no malloc counter (a sanitizer owns malloc); nothing measured")
    exit(0)
}

let failures = NIOLockedValueBox<[String]>([])

/// Records `measured` against `budget` and prints the row.
func check(_ name: String, measured: Double, budget: Double, unit: String) {
    let verdict = measured <= budget ? "ok" : "OVER BUDGET"
    print("\(name): \(formatted(measured)) \(unit) (budget \(formatted(budget))) \(verdict)")
    if measured > budget { failures.withLockedValue { $0.append("\(name): \(formatted(measured)) > \(formatted(budget)) \(unit)") } }
}

func formatted(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(format: "%.3f", value)
}

do {
    try EmbeddedFanOutGuard.run()
    try await SocketFanOutGuard.run()
} catch {
    print("allocation guard: could not measure: \(error)")
    exit(2)
}

let overBudget = failures.withLockedValue { $0 }
if overBudget.isEmpty {
    print("allocation guard: every count within budget")
} else {
    print("allocation guard: \(overBudget.count) over budget:\n  " + overBudget.joined(separator: "\n  "))
    exit(1)
}
