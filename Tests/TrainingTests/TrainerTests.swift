import ModelCore
import TensorCore
import Training
import XCTest

final class TrainerTests: XCTestCase {
    func smallConfig(threads: Int) -> TrainConfig {
        var c = TrainConfig()
        c.model = GPTConfig(vocabSize: 32, contextLength: 16, layers: 2, heads: 2, channels: 32)
        c.modelPreset = nil
        c.batchSize = 4
        c.sequenceLength = 16
        c.steps = 8
        c.gradientAccumulation = 2
        c.data.markovVocabulary = 32
        c.data.trainTokens = 20_000
        c.data.validationTokens = 5_000
        c.threads = threads
        return c
    }

    func testSameSeedAndThreadsGiveBitIdenticalParameters() throws {
        for threads in [1, 2] {
            let a = try Trainer(config: smallConfig(threads: threads)), b = try Trainer(config: smallConfig(threads: threads))
            _ = try a.run()
            _ = try b.run()
            XCTAssertEqual(a.model.parameters.toArray(), b.model.parameters.toArray(), "\(threads) threads")
            XCTAssertEqual(a.optimizer.v.toArray(), b.optimizer.v.toArray())
            XCTAssertNotEqual(a.model.parameters.toArray(), try Trainer(config: smallConfig(threads: threads)).model.parameters.toArray(),
                              "training changed nothing")
        }
    }

    func testDifferentSeedGivesDifferentParameters() throws {
        var c = smallConfig(threads: 2)
        let a = try Trainer(config: c)
        c.seed += 1
        let b = try Trainer(config: c)
        XCTAssertNotEqual(a.model.parameters.toArray(), b.model.parameters.toArray())
    }

    /// The model learns the source: validation loss ends within 5% of the chain's entropy rate.
    func testTinyModelReachesTheMarkovEntropyRate() throws {
        try checkReachesEntropyRate(optimizer: .adamw)
    }

    /// Muon (on the block matrices) at AdamW's learning rate learns the source as well.
    func testMuonReachesTheMarkovEntropyRate() throws {
        try checkReachesEntropyRate(optimizer: .muon)
    }

    func checkReachesEntropyRate(optimizer: OptimizerConfig.Name) throws {
        var c = TrainConfig()
        c.optimizer.name = optimizer
        c.model = GPTConfig(vocabSize: 64, contextLength: 32, layers: 2, heads: 4, channels: 64)
        c.modelPreset = nil
        c.batchSize = 16
        c.sequenceLength = 32
        c.steps = 400
        c.evaluation.interval = 0
        c.evaluation.batches = 16
        c.data.trainTokens = 400_000
        let trainer = try Trainer(config: c)
        let first = try trainer.validationLoss()
        let last = try XCTUnwrap(try trainer.run()?.validationLoss)
        let entropy = try XCTUnwrap(trainer.source).entropyRate
        XCTAssertGreaterThan(Double(first), 3.5, "an untrained model should be near ln 64 = 4.16")
        XCTAssertLessThan(Double(last), entropy * 1.05, "validation \(last) vs entropy rate \(entropy)")
        XCTAssertGreaterThan(Double(last), entropy * 0.97, "below the entropy rate: the validation data leaks")
    }

    func testTokenOutsideVocabularyIsAnErrorNotACrash() throws {
        let model = try GPT(config: GPTConfig(vocabSize: 8, contextLength: 4, layers: 1, heads: 1, channels: 4), maxBatch: 1, maxLength: 4)
        let tokens: [Int32] = [1, 2, 9, 3]
        XCTAssertThrowsError(try tokens.withUnsafeBufferPointer { try model.forward(tokens: $0, targets: nil, batch: 1, length: 4) }) {
            XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(position: 2, token: 9, vocabSize: 8))
        }
        XCTAssertThrowsError(try model.backward()) { XCTAssertEqual($0 as? ModelError, .backwardWithoutLoss) }
        XCTAssertThrowsError(try tokens.withUnsafeBufferPointer { try model.forward(tokens: $0, targets: nil, batch: 2, length: 2) })
    }

    func testLayoutHashDependsOnShape() {
        let a = ParameterLayout(config: .tiny)
        var other = GPTConfig.tiny
        other.layers += 1
        XCTAssertEqual(a.hash, ParameterLayout(config: .tiny).hash)
        XCTAssertNotEqual(a.hash, ParameterLayout(config: other).hash)
        XCTAssertEqual(a.count, a.tensors.last!.range.upperBound)
        XCTAssertEqual(ParameterLayout(config: .gpt2Small).count, 124_439_808)
    }
}
