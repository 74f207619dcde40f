import ModelCore
import TensorCore
import XCTest

final class GradientAccumulationTests: XCTestCase {
    /// Two half-batches with loss scale ½ give the gradient of the whole batch.
    func testMicroBatchesSumToTheFullBatchGradient() throws {
        let config = GPTConfig(vocabSize: 23, contextLength: 8, layers: 2, heads: 2, channels: 12)
        let (b, t) = (4, 7)
        var rng = SeededGenerator(seed: 3)
        let tokens = (0..<(b * t)).map { _ in Int32(rng.next() % 23) }
        let targets = (0..<(b * t)).map { _ in Int32(rng.next() % 23) }

        let whole = try GPT(config: config, maxBatch: b, maxLength: t, parallelism: Parallelism(threads: 2))
        whole.initializeParameters(seed: 5)
        try tokens.withUnsafeBufferPointer { tk in
            _ = try targets.withUnsafeBufferPointer { try whole.forward(tokens: tk, targets: $0, batch: b, length: t) }
        }
        try whole.backward()

        let parts = try GPT(config: config, maxBatch: b / 2, maxLength: t, parallelism: Parallelism(threads: 2))
        parts.initializeParameters(seed: 5)
        for half in 0..<2 {
            let range = (half * b / 2 * t)..<((half + 1) * b / 2 * t)
            let tk = Array(tokens[range]), tg = Array(targets[range])
            try tk.withUnsafeBufferPointer { tkp in
                _ = try tg.withUnsafeBufferPointer { try parts.forward(tokens: tkp, targets: $0, batch: b / 2, length: t) }
            }
            try parts.backward(lossScale: 0.5)
        }
        let expected = whole.gradients.toArray(), actual = parts.gradients.toArray()
        let scale = expected.map(abs).max()!
        XCTAssertGreaterThan(scale, 0)
        for i in 0..<expected.count { XCTAssertEqual(actual[i], expected[i], accuracy: 1e-5 * scale) }
    }
}
