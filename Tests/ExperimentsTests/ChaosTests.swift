import Coordination
import Experiments
import XCTest

/// The chaos experiment's plan and its accounting, without processes.
final class ChaosTests: XCTestCase {
    func testAPlanIsSeededPoissonWithTheCoordinatorOnceAfterTheMiddle() {
        let plan = ChaosPlan(seed: 7, workers: 4, seconds: 6000, perMinute: 1)
        XCTAssertEqual(plan, ChaosPlan(seed: 7, workers: 4, seconds: 6000, perMinute: 1), "the same seed gives the same plan")
        XCTAssertNotEqual(plan, ChaosPlan(seed: 8, workers: 4, seconds: 6000, perMinute: 1))
        // 100 minutes at one a minute: about 100 failures (Poisson: ±3 sigma is ±30).
        XCTAssertEqual(Double(plan.events.count), 100, accuracy: 30)
        let coordinator = plan.events.filter { $0.kind == .coordinator }
        XCTAssertEqual(coordinator.count, 1)
        XCTAssertGreaterThanOrEqual(coordinator[0].at, 3000)
        XCTAssertEqual(plan.events.map(\.at), plan.events.map(\.at).sorted())
        XCTAssertTrue(plan.events.allSatisfy { $0.kind == .coordinator || (0..<4).contains($0.worker ?? -1) })
        let kinds = Set(plan.events.map(\.kind))
        XCTAssertEqual(kinds, [.kill, .freeze, .coordinator])
        XCTAssertTrue(ChaosPlan(seed: 1, workers: 4, seconds: 600, perMinute: 0).events.isEmpty)
    }

    func report(_ name: String, round: Int, epoch: Int, computed: Int, elapsed: Double, at time: Double,
                validation: Double? = nil, finished: Bool = false) -> RecordedReport {
        var r = WorkerReport(name: name, round: round, rounds: 4, steps: 0, tokens: 0, loss: 1, validationLoss: validation, bytesSent: 0,
                             bytesReceived: 0, computeSeconds: elapsed, waitSeconds: 0, elapsedSeconds: elapsed, tokensPerComputeSecond: 0,
                             finished: finished)
        r.epoch = epoch
        r.computedTokens = computed
        return RecordedReport(report: r, receivedAt: time)
    }

    /// Two workers, 100 tokens a round each. Round 1 is reported by both in epoch 0, then b is
    /// killed mid-round 2 and restarted: a redoes round 2 alone in epoch 1 (its first try was
    /// discarded), then both do round 3 in epoch 2.
    func testCommittedTokensCountEachRoundsNewestInstanceAndComputedTokensIncludeDiscardedWork() {
        let records = [
            report("a", round: 0, epoch: 0, computed: 100, elapsed: 10, at: 10),
            report("b", round: 0, epoch: 0, computed: 100, elapsed: 10, at: 10),
            report("a", round: 1, epoch: 0, computed: 200, elapsed: 20, at: 20),
            report("b", round: 1, epoch: 0, computed: 200, elapsed: 20, at: 20),
            // b killed at 25 (half a round unreported), a's try at round 2 discarded, a redoes it alone.
            report("a", round: 2, epoch: 1, computed: 350, elapsed: 40, at: 40),
            report("b", round: 3, epoch: 2, computed: 100, elapsed: 10, at: 52, validation: 2.5, finished: true),
            report("a", round: 3, epoch: 2, computed: 450, elapsed: 52, at: 52, validation: 2.5, finished: true),
        ]
        let analysis = ChaosAnalysis(records: records, kills: [.init(worker: "b", time: 25)], disturbances: [25],
                                     tokensOfRound: { _ in 100 })
        // Rounds 0 and 1 by two, round 2 by one (epoch 1), round 3 by two.
        XCTAssertEqual(analysis.committedTokens, 700)
        // a: 450; b's first process: 200 + 5 s at 10 tokens/s; b's second: 100.
        XCTAssertEqual(analysis.computedTokens, 450 + 250 + 100)
        XCTAssertEqual(analysis.efficiency, 700.0 / 800.0, accuracy: 1e-12)
        // Round 1 was the newest before the kill; round 2 arrived at 40.
        XCTAssertEqual(analysis.recoverySeconds, [15])
        XCTAssertEqual(analysis.finalValidationLoss, 2.5)
        XCTAssertEqual(analysis.medianRoundSeconds, 12, "a's gaps: 10, 20, 12")
    }
}
