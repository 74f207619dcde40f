import ModelCore
import TensorCore
import XCTest

final class DecoderTests: XCTestCase {
    /// Cached incremental decoding gives, at every position, the logits of a full forward pass.
    func testKVCacheMatchesFullForward() throws {
        let config = GPTConfig(vocabSize: 37, contextLength: 19, layers: 2, heads: 3, channels: 24)
        let model = try GPT(config: config, maxBatch: 1, maxLength: 19, parallelism: Parallelism(threads: 2))
        model.initializeParameters(seed: 11)
        // Larger weights than the default init, so that attention is far from uniform.
        for i in 0..<model.parameters.count { model.parameters.base[i] *= 4 }
        var rng = SeededGenerator(seed: 2)
        let tokens = (0..<19).map { _ in Int32(rng.next() % 37) }
        _ = try tokens.withUnsafeBufferPointer { try model.forward(tokens: $0, targets: nil, batch: 1, length: 19) }
        let full = Array(model.logits)
        let decoder = GPTDecoder(model: model)
        for (t, token) in tokens.enumerated() {
            try decoder.append(token)
            let expected = full[(t * 37)..<((t + 1) * 37)]
            let scale = expected.map(abs).max()!
            for (a, b) in zip(decoder.logits.toArray(), expected) { XCTAssertEqual(a, b, accuracy: 1e-4 * scale, "position \(t)") }
        }
        XCTAssertThrowsError(try decoder.append(1), "the context is full")
        decoder.reset()
        XCTAssertThrowsError(try decoder.append(37)) { XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(position: 0, token: 37, vocabSize: 37)) }
    }

    func testSamplingOptions() {
        let logits: [Float] = [0, 3, 1, 2.9, -5]
        var rng = SeededGenerator(seed: 1)
        logits.withUnsafeBufferPointer { l in
            XCTAssertEqual(SamplingOptions(temperature: 0).sample(l, rng: &rng), 1)
            for _ in 0..<200 {
                let k2 = SamplingOptions(temperature: 1, topK: 2).sample(l, rng: &rng)
                XCTAssertTrue([1, 3].contains(k2))
                // Token 1 alone holds 48% of the mass, so top-p 0.4 keeps just it.
                XCTAssertEqual(SamplingOptions(temperature: 1, topP: 0.4).sample(l, rng: &rng), 1)
            }
            var counts = [Int](repeating: 0, count: 5)
            for _ in 0..<20_000 { counts[Int(SamplingOptions().sample(l, rng: &rng))] += 1 }
            let z = logits.map { exp(Double($0)) }.reduce(0, +)
            for i in 0..<5 { XCTAssertEqual(Double(counts[i]) / 20_000, exp(Double(logits[i])) / z, accuracy: 0.015) }
        }
    }
}
