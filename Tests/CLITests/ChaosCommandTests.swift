import Foundation
import XCTest

/// `tributary experiment chaos` end to end, small: real coordinator and worker processes, a
/// worker killed and one frozen while the run trains, the coordinator killed once; the run
/// finishes, the accounting adds up and every checkpoint verifies.
final class ChaosCommandTests: XCTestCase {
    struct Report: Decodable {
        struct Outcome: Decodable {
            var done: [Event]
            var unexpectedExits: [String]
            var checkpoints: Int
            var damagedCheckpoints: [String]
        }
        struct Event: Decodable { var kind: String }
        struct Analysis: Decodable {
            var committedTokens: Int
            var computedTokens: Int
            var efficiency: Double
            var finalValidationLoss: Double?
        }
        struct Run: Decodable { var outcome: Outcome; var analysis: Analysis }
        var undisturbed: Run
        var chaos: Run
    }

    func testARunUnderKillsFreezesAndACoordinatorRestartFinishesAndAccountsForItsWork() throws {
        let dir = try temporaryDirectory()
        let config = dir.appendingPathComponent("run.yaml")
        try """
            model: {vocabSize: 32, contextLength: 32, layers: 1, heads: 2, channels: 32}
            batchSize: 4
            sequenceLength: 32
            steps: 600
            data: {markovVocabulary: 32, trainTokens: 40000, validationTokens: 4096}
            evaluation: {interval: 100, batches: 2}
            checkpoint: {interval: 100, keep: 2}
            strategy: {name: diloco, innerSteps: 10, codec: int8}
            """.write(to: config, atomically: true, encoding: .utf8)
        // Seed 1 plans a kill (1.1 s), a freeze (3.9 s) and the coordinator (11.8 s), so the run must
        // still be going at 11.8 s. Its compute takes 1–2 s (a fast CI machine finished before the
        // freeze); the link's 50 ms delay sets its length instead: 15 s undisturbed, and every round
        // takes at least two hops (100 ms) whatever the CPU.
        let r = try runTributary(["experiment", "chaos", "--config", config.path, "--workers", "3", "--minutes", "0.2",
                                  "--failures-per-minute", "20", "--seed", "1", "--link", "unlimited,50ms",
                                  "--out", dir.appendingPathComponent("chaos").path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try JSONDecoder().decode(Report.self, from: Data(r.stdout.utf8))
        let chaos = report.chaos
        XCTAssertEqual(Set(chaos.outcome.done.map(\.kind)), ["kill", "freeze", "coordinator"], r.stderr)
        XCTAssertEqual(chaos.outcome.unexpectedExits, [])
        XCTAssertGreaterThan(chaos.outcome.checkpoints, 0)
        XCTAssertEqual(chaos.outcome.damagedCheckpoints, [])
        // Every round reached the model: 60 rounds of 10 steps of 128 tokens, by up to 3 workers.
        XCTAssertGreaterThan(chaos.analysis.committedTokens, 0)
        XCTAssertLessThanOrEqual(chaos.analysis.committedTokens, 3 * 600 * 128)
        XCTAssertEqual(report.undisturbed.analysis.committedTokens, 3 * 600 * 128)
        XCTAssertEqual(report.undisturbed.analysis.efficiency, 1, accuracy: 1e-9, "nothing is lost undisturbed")
        XCTAssertLessThan(chaos.analysis.efficiency, 1, "a kill loses work")
        XCTAssertGreaterThan(chaos.analysis.efficiency, 0.3)
        XCTAssertNotNil(chaos.analysis.finalValidationLoss)
        let markdown = try String(contentsOf: dir.appendingPathComponent("chaos/report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("training efficiency"), markdown)
    }
}
