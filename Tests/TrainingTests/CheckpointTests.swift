import Foundation
import ModelCore
import Training
import XCTest

final class CheckpointTests: XCTestCase {
    func config(steps: Int = 12) -> TrainConfig {
        var c = TrainConfig()
        c.model = GPTConfig(vocabSize: 32, contextLength: 16, layers: 2, heads: 2, channels: 16)
        c.modelPreset = nil
        c.batchSize = 4
        c.sequenceLength = 16
        c.steps = steps
        c.gradientAccumulation = 2
        c.optimizer.warmupSteps = 3 // so that the schedule matters within the run
        c.data.markovVocabulary = 32
        c.data.trainTokens = 5_000
        c.data.validationTokens = 2_000
        c.evaluation.interval = 0
        c.evaluation.batches = 1
        c.checkpoint.interval = 4
        c.checkpoint.keep = 2
        c.threads = 2
        return c
    }


    func testStopAndResumeIsBitIdenticalToAStraightRun() throws {
        try checkStopAndResume(config())
    }

    /// Muon's state (momentum in `m` for its matrices, AdamW's moments for the rest) is saved whole.
    func testMuonStopAndResumeIsBitIdenticalToAStraightRun() throws {
        var c = config()
        c.optimizer.name = .muon
        try checkStopAndResume(c)
    }

    func checkStopAndResume(_ c: TrainConfig) throws {
        func config() -> TrainConfig { c }
        let straight = try Trainer(config: config())
        _ = try straight.run()

        let dir = try temporaryDirectory()
        let store = CheckpointStore(directory: dir, keep: 5)
        let first = try Trainer(config: config())
        _ = try first.run(checkpoints: store, shouldStop: { first.step == 6 })
        XCTAssertEqual(first.step, 6)
        XCTAssertEqual(store.checkpoints().map(\.lastPathComponent), ["step-00000006", "step-00000004"])

        let second = try Trainer(config: config())
        let (loaded, refused) = store.restoreNewestValid(into: second)
        XCTAssertEqual(loaded?.lastPathComponent, "step-00000006")
        XCTAssertTrue(refused.isEmpty)
        XCTAssertEqual(second.step, 6)
        _ = try second.run(checkpoints: store)
        XCTAssertEqual(second.model.parameters.toArray(), straight.model.parameters.toArray())
        XCTAssertEqual(second.optimizer.m.toArray(), straight.optimizer.m.toArray())
        XCTAssertEqual(second.optimizer.v.toArray(), straight.optimizer.v.toArray())
    }

    func testKeepsTheNewestK() throws {
        let dir = try temporaryDirectory()
        let trainer = try Trainer(config: config())
        _ = try trainer.run(checkpoints: CheckpointStore(directory: dir, keep: 2))
        XCTAssertEqual(CheckpointStore(directory: dir, keep: 2).checkpoints().map(\.lastPathComponent), ["step-00000012", "step-00000008"])
    }

    /// Damages the newest checkpoint in `how`, then checks it is refused with `mentions` and the
    /// previous one is loaded, with no file changed.
    func assertFallsBack(mentions: String, file: StaticString = #filePath, line: UInt = #line,
                         damage how: (URL) throws -> Void) throws {
        let dir = try temporaryDirectory()
        let store = CheckpointStore(directory: dir, keep: 3)
        _ = try Trainer(config: config()).run(checkpoints: store)
        let newest = store.checkpoints()[0]
        try how(newest)
        let before = try snapshot(dir)
        let trainer = try Trainer(config: config())
        let (loaded, refused) = store.restoreNewestValid(into: trainer)
        XCTAssertEqual(loaded?.lastPathComponent, "step-00000008", file: file, line: line)
        XCTAssertEqual(refused.count, 1, file: file, line: line)
        XCTAssertTrue(refused.first?.1.contains(mentions) ?? false, "\(refused)", file: file, line: line)
        XCTAssertEqual(trainer.step, 8, file: file, line: line)
        XCTAssertEqual(try snapshot(dir), before, "restoring changed files", file: file, line: line)
    }

    func snapshot(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for case let url as URL in FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)! where !url.hasDirectoryPath {
            out[url.path] = try Data(contentsOf: url)
        }
        return out
    }

    func testTruncatedCheckpointIsRefused() throws {
        try assertFallsBack(mentions: "truncated") { url in
            let file = url.appendingPathComponent("model.safetensors")
            let data = try Data(contentsOf: file)
            try data.prefix(data.count / 2).write(to: file)
        }
    }

    func testCorruptedCheckpointIsRefusedByChecksum() throws {
        try assertFallsBack(mentions: "fails its checksum") { url in
            let file = url.appendingPathComponent("optimizer.safetensors")
            var data = try Data(contentsOf: file)
            data[data.count - 5] ^= 0x40
            try data.write(to: file)
        }
    }

    func testDamagedStateIsRefused() throws {
        try assertFallsBack(mentions: "state.json is damaged") { url in
            try Data("{\"step\": ".utf8).write(to: url.appendingPathComponent("state.json"))
        }
    }

    func testCheckpointOfAnotherModelIsRefused() throws {
        let dir = try temporaryDirectory()
        let store = CheckpointStore(directory: dir, keep: 3)
        _ = try Trainer(config: config(steps: 4)).run(checkpoints: store)
        var other = config()
        other.model.layers = 3
        let trainer = try Trainer(config: other)
        let (loaded, refused) = store.restoreNewestValid(into: trainer)
        XCTAssertNil(loaded)
        XCTAssertTrue(refused.first?.1.contains("another model") ?? false, "\(refused)")
        XCTAssertEqual(trainer.step, 0)
    }

    func testCheckpointOfAnotherOptimizerIsRefused() throws {
        let dir = try temporaryDirectory()
        let store = CheckpointStore(directory: dir, keep: 3)
        _ = try Trainer(config: config(steps: 4)).run(checkpoints: store)
        var other = config()
        other.optimizer.name = .muon
        let trainer = try Trainer(config: other)
        let (loaded, refused) = store.restoreNewestValid(into: trainer)
        XCTAssertNil(loaded)
        XCTAssertTrue(refused.first?.1.contains("holds adamw state and this run uses muon") ?? false, "\(refused)")
    }
}
