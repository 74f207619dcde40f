import Foundation
import ModelCore
import TensorCore
import Training
import XCTest

/// Compares the whole model with `tools/gpt2_reference.py` (NumPy, float64), through its fixture.
final class ReferenceFixtureTests: XCTestCase {
    struct Fixture {
        let config: GPTConfig
        let batch: Int, length: Int
        let tensors: [String: SafeTensor]
        let metadata: [String: String]

        func floats(_ name: String) throws -> [Float] {
            try XCTUnwrap(tensors[name], "fixture lacks \(name)").floats
        }
        func ints(_ name: String) throws -> [Int32] {
            try XCTUnwrap(tensors[name], "fixture lacks \(name)").ints
        }
        func hyper(_ key: String) throws -> Float {
            try XCTUnwrap(Float(XCTUnwrap(metadata["adam." + key])))
        }
    }

    func loadFixture() throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "gpt2_tiny_reference", withExtension: "safetensors", subdirectory: "Fixtures"))
        let (tensors, meta) = try SafeTensors.read(contentsOf: url)
        func int(_ k: String) throws -> Int { try XCTUnwrap(Int(XCTUnwrap(meta[k]))) }
        let config = GPTConfig(vocabSize: try int("vocab_size"), contextLength: try int("context_length"),
                               layers: try int("layers"), heads: try int("heads"), channels: try int("channels"))
        return Fixture(config: config, batch: try int("batch"), length: try int("length"), tensors: tensors, metadata: meta)
    }

    func makeModel(_ f: Fixture, threads: Int) throws -> GPT {
        let model = try GPT(config: f.config, maxBatch: f.batch, maxLength: f.length, parallelism: Parallelism(threads: threads))
        for t in model.layout.tensors {
            let values = try f.floats("param." + t.name)
            XCTAssertEqual(values.count, t.count, t.name)
            model.parameters.pointer(at: t.offset).update(from: values, count: t.count)
        }
        return model
    }

    /// max |actual − expected| / max |expected|: relative to the tensor's scale, so that entries
    /// that are near zero in exact arithmetic do not dominate.
    func relativeError(_ actual: UnsafeBufferPointer<Float>, _ expected: [Float]) -> Float {
        var maxDiff: Float = 0, maxRef: Float = 0
        for i in 0..<expected.count {
            maxDiff = max(maxDiff, abs(actual[i] - expected[i]))
            maxRef = max(maxRef, abs(expected[i]))
        }
        return maxDiff / max(maxRef, 1e-12)
    }

    func testLogitsLossAndGradientsMatchNumPy() throws {
        let f = try loadFixture()
        for threads in [1, 2] {
            let model = try makeModel(f, threads: threads)
            let tokens = try f.ints("tokens"), targets = try f.ints("targets")
            try tokens.withUnsafeBufferPointer { tok in
                try model.forward(tokens: tok, targets: nil, batch: f.batch, length: f.length)
                XCTAssertLessThan(relativeError(model.logits, try f.floats("logits")), 1e-4, "logits, \(threads) threads")
                let loss = try targets.withUnsafeBufferPointer { try model.forward(tokens: tok, targets: $0, batch: f.batch, length: f.length) }
                let expectedLoss = try f.floats("loss")[0]
                XCTAssertEqual(try XCTUnwrap(loss), expectedLoss, accuracy: 1e-4 * expectedLoss)
            }
            model.zeroGradients()
            try model.backward()
            for t in model.layout.tensors {
                let actual = UnsafeBufferPointer(start: model.gradients.pointer(at: t.offset), count: t.count)
                XCTAssertLessThan(relativeError(actual, try f.floats("grad." + t.name)), 1e-4, "gradient of \(t.name), \(threads) threads")
            }
        }
    }

    /// Three clipped steps of `optimizer` on the fixture's batch, compared with the fixture's
    /// parameters under `prefix` (the NumPy script's steps of the same rule).
    func checkThreeSteps(_ optimizer: any Optimizer, expected prefix: String, _ f: Fixture, _ model: GPT) throws {
        let tokens = try f.ints("tokens"), targets = try f.ints("targets")
        for _ in 0..<3 {
            model.zeroGradients()
            try tokens.withUnsafeBufferPointer { tok in
                _ = try targets.withUnsafeBufferPointer { try model.forward(tokens: tok, targets: $0, batch: f.batch, length: f.length) }
            }
            try model.backward()
            let norm = gradientNorm(model.gradients, parallelism: model.parallelism)
            let clip = try f.hyper("clip")
            optimizer.step(parameters: model.parameters, gradients: model.gradients, learningRate: try f.hyper("lr"),
                           gradientScale: norm > clip ? clip / norm : 1, parallelism: model.parallelism)
        }
        for t in model.layout.tensors {
            let actual = UnsafeBufferPointer(start: model.parameters.pointer(at: t.offset), count: t.count)
            XCTAssertLessThan(relativeError(actual, try f.floats(prefix + t.name)), 1e-4, "parameters of \(t.name) after 3 steps")
        }
    }

    func testThreeAdamWStepsMatchNumPy() throws {
        let f = try loadFixture()
        let model = try makeModel(f, threads: 2)
        let optimizer = AdamW(layout: model.layout, beta1: try f.hyper("beta1"), beta2: try f.hyper("beta2"),
                              epsilon: try f.hyper("eps"), weightDecay: try f.hyper("weight_decay"))
        try checkThreeSteps(optimizer, expected: "step3.", f, model)
    }

    /// Muon on the block matrices (Newton–Schulz in the right-hand form for tall ones; NumPy
    /// transposes instead), AdamW on the rest.
    func testThreeMuonStepsMatchNumPy() throws {
        let f = try loadFixture()
        for threads in [1, 2] {
            let model = try makeModel(f, threads: threads)
            let momentum = try XCTUnwrap(Float(XCTUnwrap(f.metadata["muon.momentum"])))
            let steps = try XCTUnwrap(Int(XCTUnwrap(f.metadata["muon.ns_steps"])))
            let optimizer = Muon(layout: model.layout, momentum: momentum, newtonSchulzSteps: steps, beta1: try f.hyper("beta1"),
                                 beta2: try f.hyper("beta2"), epsilon: try f.hyper("eps"), weightDecay: try f.hyper("weight_decay"))
            XCTAssertEqual(optimizer.matrices.count, 4 * f.config.layers)
            try checkThreeSteps(optimizer, expected: "muon3.", f, model)
            // Moment sync sends only the second moments updates use: after the steps, v is zero outside
            // them, and they cover every tensor that is not a block matrix.
            let ranges = optimizer.secondMomentRanges
            var used = [Bool](repeating: false, count: optimizer.v.count)
            for range in ranges { for i in range { used[i] = true } }
            XCTAssertTrue(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound < $1.lowerBound }, "ascending, apart")
            for i in used.indices where !used[i] { XCTAssertEqual(optimizer.v.base[i], 0, "v[\(i)] outside the ranges") }
            for t in model.layout.tensors where !optimizer.matrices.contains(where: { $0.name == t.name }) {
                XCTAssertTrue(used[t.range].allSatisfy { $0 }, "\(t.name) has second moments")
            }
            XCTAssertEqual(used.filter { !$0 }.count, optimizer.matrices.map(\.count).reduce(0, +))
        }
    }
}
