import Foundation
import Training
import XCTest

final class DataPreparationTests: XCTestCase {


    func testShardsHoldTheTokensAndASecondRunIsCached() throws {
        let dir = try temporaryDirectory()
        let inputs = dir.appendingPathComponent("texts")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        let text = try TextFiles.read(try fixture("gpl-3.txt"))
        try text.write(to: inputs.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        try "Short second file.\nWith two lines.\n".write(to: inputs.appendingPathComponent("b.txt"), atomically: true, encoding: .utf8)
        try Data([1, 0, 2, 0xFF]).write(to: inputs.appendingPathComponent("index.dat")) // binary: skipped in a folder walk
        let tokenizerURL = try fixture("bpe600.tokenizer.json")
        var prep = DataPreparation()
        prep.shardTokens = 5_000 // several train shards
        let out = dir.appendingPathComponent("prepared")
        let (manifest, cached) = try prep.prepare(inputs: [inputs.path], tokenizerURL: tokenizerURL, directory: out)
        XCTAssertFalse(cached)
        XCTAssertEqual(manifest.inputs.map { URL(fileURLWithPath: $0).lastPathComponent }, ["a.txt", "b.txt"])
        XCTAssertGreaterThan(manifest.shards.filter { $0.split == "train" }.count, 1)
        let bpe = try ByteLevelBPE(contentsOf: tokenizerURL)
        let train = try manifest.tokens(split: "train", in: out), validation = try manifest.tokens(split: "validation", in: out)
        let all = bpe.encode(text) + bpe.encode("Short second file.\nWith two lines.\n")
        XCTAssertEqual(train.count + validation.count, all.count)
        XCTAssertEqual(Double(validation.count) / Double(all.count), 0.05, accuracy: 0.01)
        XCTAssertEqual(Set(train + validation), Set(all))

        let (again, cachedAgain) = try prep.prepare(inputs: [inputs.path], tokenizerURL: tokenizerURL, directory: out)
        XCTAssertTrue(cachedAgain)
        XCTAssertEqual(again, manifest)
        try "Changed.\n".write(to: inputs.appendingPathComponent("b.txt"), atomically: true, encoding: .utf8)
        XCTAssertFalse(try prep.prepare(inputs: [inputs.path], tokenizerURL: tokenizerURL, directory: out).cached)
    }

    func testDamagedShardAndBadInputAreClearErrors() throws {
        let dir = try temporaryDirectory()
        let input = dir.appendingPathComponent("a.txt")
        try "some text for the shard, long enough to have tokens in both splits of it.".write(to: input, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("prepared")
        let (manifest, _) = try DataPreparation().prepare(inputs: [input.path], tokenizerURL: try fixture("bpe600.tokenizer.json"), directory: out)
        let shard = out.appendingPathComponent(manifest.shards[0].file)
        var data = try Data(contentsOf: shard)
        data.removeLast(2)
        try data.write(to: shard)
        XCTAssertThrowsError(try manifest.tokens(split: "train", in: out)) { XCTAssertTrue("\($0)".contains("does not match its manifest digest"), "\($0)") }
        XCTAssertThrowsError(try TokenShard.read(shard, vocabulary: 600)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }

        let bad = dir.appendingPathComponent("bad.txt")
        try Data([0x68, 0x69, 0xFE]).write(to: bad)
        XCTAssertThrowsError(try DataPreparation().prepare(inputs: [bad.path], tokenizerURL: try fixture("bpe600.tokenizer.json"), directory: out)) {
            XCTAssertTrue("\($0)".contains("not valid UTF-8 at byte offset 2"), "\($0)")
        }
        XCTAssertThrowsError(try DataPreparation().prepare(inputs: [dir.appendingPathComponent("missing").path],
                                                          tokenizerURL: try fixture("bpe600.tokenizer.json"), directory: out)) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
    }
}

final class PreparedTrainingTests: XCTestCase {
    /// A small model trained on prepared shards of real English text (the GPL-3, 14k tokens) learns:
    /// its validation loss falls well below where it started, about the uniform ln(600) = 6.4 nats.
    func testTrainsOnPreparedShards() throws {
        let dir = try temporaryDirectory()
        let text = try fixture("gpl-3.txt")
        let tokenizer = try fixture("bpe600.tokenizer.json")
        _ = try DataPreparation().prepare(inputs: [text.path], tokenizerURL: tokenizer, directory: dir)
        var c = try TrainConfig.load(yaml: """
            model: {vocabSize: 600, contextLength: 32, layers: 2, heads: 4, channels: 64}
            batchSize: 8
            sequenceLength: 32
            steps: 150
            optimizer: {learningRate: 0.003, warmupSteps: 10}
            evaluation: {interval: 0, batches: 4}
            data: {prepared: "\(dir.path)"}
            """)
        let trainer = try Trainer(config: c)
        XCTAssertNil(trainer.source)
        let before = try trainer.validationLoss()
        let after = try XCTUnwrap(try trainer.run()?.validationLoss)
        XCTAssertGreaterThan(before, 6)
        XCTAssertLessThan(after, before - 0.6, "validation loss \(before) -> \(after) after 150 steps")

        c.model.vocabSize = 300
        XCTAssertThrowsError(try Trainer(config: c)) { XCTAssertTrue("\($0)".contains("uses 600 token ids"), "\($0)") }
        c.data.prepared = dir.appendingPathComponent("nothing").path
        c.model.vocabSize = 600
        XCTAssertThrowsError(try Trainer(config: c)) { XCTAssertTrue("\($0)".contains("run `tributary data prepare` first"), "\($0)") }
    }
}
