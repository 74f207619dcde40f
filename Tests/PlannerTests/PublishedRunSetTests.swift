import Foundation
import Planner
import XCTest

/// The planner against the measured runs of configs/planner/published-runs.yaml (Megatron-LM 2021,
/// DT-FM; H100 and A100 at 2k–8k tokens, fused and unfused attention, TP/PP, ZeRO-1 and FSDP) and
/// DT-FM's geo-distributed cases, each given the layout its source states, against the issue's
/// bounds over the whole set (80% within 25%, median error at most 15%).
final class PublishedRunSetTests: XCTestCase {
    static func load() throws -> MeasuredRuns {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../configs/planner/published-runs.yaml").standardizedFileURL
        return try MeasuredRuns(yaml: try String(contentsOf: url, encoding: .utf8), source: "published-runs.yaml")
    }

    func testPublishedRunsWithinTwentyFivePercentOnFourFifthsMedianFifteenPercent() throws {
        let checks = try Self.load().check(catalogue: try DeviceCatalogue.shipped()) + PublishedRunsTests.dtfmChecks()
        XCTAssertGreaterThanOrEqual(checks.count, 18 + 15, "the shared rows and at least 15 more")
        // The rows the cost model's constants were calibrated on stay within 25% one by one.
        for c in checks where c.id.hasPrefix("MEG21") || c.id.hasPrefix("DTFM") {
            XCTAssertLessThan(abs(c.error), 0.25, c.id)
        }
        for c in checks {
            print(String(format: "%-5@ %-58@ predicted %8.0f tokens/s per device, reported %8.0f: %+6.1f%%  (%@)", c.id as NSString,
                         c.source as NSString, c.predictedTokensPerSecondPerDevice, c.reportedTokensPerSecondPerDevice, 100 * c.error,
                         c.plan.sites.map(\.layout.summary).joined(separator: "; ") as NSString))
        }
        let summary = measuredRunSummary(checks)
        print(String(format: "published runs: %.0f%% within 25%%, median error %.1f%%", 100 * summary.withinBound, 100 * summary.medianError))
        // The bounds: 80% within 25% and a median of at most 15% (83% and 12.1% now).
        XCTAssertGreaterThanOrEqual(summary.withinBound, 0.80)
        XCTAssertLessThanOrEqual(summary.medianError, 0.15)
    }
}
