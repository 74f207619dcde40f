import Basics
import AllocationCounter
import Dispatch
import Foundation
import ModelCore
import TensorCore
import Training

/// Measures sgemm and full training steps in one process, so their ratio survives a noisy machine.
public struct EngineBenchmark {
    /// One model shape and batch to time.
    public struct Case: Sendable {
        public let name: String
        public let config: GPTConfig
        public let batch: Int
        public let length: Int
    }

    public static let cases: [Case] = [
        Case(name: "gpt2Small-B4-T64", config: .gpt2Small, batch: 4, length: 64),
        Case(name: "gpt2Small-B8-T256", config: .gpt2Small, batch: 8, length: 256),
        Case(name: "L4-C256-B8-T256", config: GPTConfig(vocabSize: 50257, contextLength: 256, layers: 4, heads: 4, channels: 256),
             batch: 8, length: 256),
    ]

    public struct GemmResult: Codable {
        public let label: String
        public let m: Int, n: Int, k: Int
        /// OpenBLAS with its own threads.
        public let gflops: Double
        /// The same product split by rows across Tributary's threads (what the model runs).
        public let splitGFLOPs: Double
    }

    public struct StepResult: Codable {
        public let name: String
        public let parameters: Int
        public let batch: Int, length: Int
        public let msPerStep: Double
        public let forwardMs: Double, backwardMs: Double, optimizerMs: Double
        public let tokensPerSecond: Double
        public let flopsPerToken: Double
        public let modelGFLOPs: Double
        /// OpenBLAS 1024³ sgemm rate measured just before this config's steps.
        public let sgemm1024GFLOPs: Double
        /// modelGFLOPs / sgemm1024GFLOPs.
        public let fractionOfSgemm: Double
        /// Heap allocations during the timed steps, per step (nil where not countable).
        public let allocationsPerStep: Double?
        public let gemms: [GemmResult]

        /// The same result against another sgemm baseline.
        public func rebased(sgemmRate: Double) -> StepResult {
            StepResult(name: name, parameters: parameters, batch: batch, length: length, msPerStep: msPerStep,
                       forwardMs: forwardMs, backwardMs: backwardMs, optimizerMs: optimizerMs,
                       tokensPerSecond: tokensPerSecond, flopsPerToken: flopsPerToken, modelGFLOPs: modelGFLOPs,
                       sgemm1024GFLOPs: sgemmRate, fractionOfSgemm: modelGFLOPs / sgemmRate,
                       allocationsPerStep: allocationsPerStep, gemms: gemms)
        }
    }

    public struct Report: Codable {
        public let threads: Int
        /// The OpenBLAS kernels that ran (`openblas_get_corename`).
        public let blasCore: String
        public let timedSteps: Int
        public let sgemm1024GFLOPs: Double
        public let configs: [StepResult]
    }

    public let threads: Int
    public let steps: Int

    public init(threads: Int, steps: Int) {
        self.threads = threads
        self.steps = steps
    }

    public func run(cases: [Case], log: (String) -> Void) throws -> Report {
        let core = BLASCoreCheck.current()
        log("threads \(threads), \(steps) timed steps per config (median), fp32; \(core.summary)")
        let first = measureGemm(label: "1024^3", m: 1024, n: 1024, k: 1024, transposeB: false)
        log(String(format: "sgemm 1024^3: %.1f GFLOP/s OpenBLAS threads, %.1f GFLOP/s split by rows", first.gflops, first.splitGFLOPs))
        var results: [StepResult] = []
        for c in cases {
            log("\n\(c.name):")
            let gemms = modelGemms(c).map { g -> GemmResult in
                let r = measureGemm(label: g.0, m: g.1, n: g.2, k: g.3, transposeB: true)
                let label = g.0.padding(toLength: 10, withPad: " ", startingAt: 0)
                log(String(format: "  sgemm %@ %5d x %5d x %5d: %6.1f GFLOP/s OpenBLAS threads, %6.1f split by rows",
                           label, g.1, g.2, g.3, r.gflops, r.splitGFLOPs))
                return r
            }
            // The baseline is the better of two 1024³ measurements, one on each side of the steps,
            // so a noisy moment does not flatter the ratio.
            let before = measureGemm(label: "1024^3", m: 1024, n: 1024, k: 1024, transposeB: false).gflops
            var r = try measureSteps(c, sgemmRate: before, gemms: gemms)
            let after = measureGemm(label: "1024^3", m: 1024, n: 1024, k: 1024, transposeB: false).gflops
            r = r.rebased(sgemmRate: max(before, after))
            log(String(format: "  sgemm 1024^3 around the steps: %.1f / %.1f GFLOP/s (baseline: the larger)", before, after))
            let allocations = r.allocationsPerStep.map { String(format: "%.1f", $0) } ?? "n/a"
            log(String(format: "  step %.0f ms (forward %.0f, backward %.0f, AdamW %.0f) | %.1f tok/s | %.1f model GFLOP/s = %.0f%% of sgemm | %@ allocations/step",
                       r.msPerStep, r.forwardMs, r.backwardMs, r.optimizerMs, r.tokensPerSecond, r.modelGFLOPs,
                       r.fractionOfSgemm * 100, allocations))
            results.append(r)
        }
        return Report(threads: threads, blasCore: core.active, timedSteps: steps, sgemm1024GFLOPs: first.gflops, configs: results)
    }

    /// The distinct forward matrix products of a training step: (label, rows, out, in).
    private func modelGemms(_ c: Case) -> [(String, Int, Int, Int)] {
        let n = c.batch * c.length, ch = c.config.channels
        return [("qkv", n, 3 * ch, ch), ("attn.proj", n, ch, ch), ("mlp.fc", n, 4 * ch, ch),
                ("mlp.proj", n, ch, 4 * ch), ("lm_head", n, c.config.vocabSize, ch)]
    }

    /// Times one product with OpenBLAS's own threads, then split by rows over ours.
    public func measureGemm(label: String, m: Int, n: Int, k: Int, transposeB: Bool) -> GemmResult {
        let a = FloatSlab(count: m * k), b = FloatSlab(count: k * n), out = FloatSlab(count: m * n)
        var rng = SeededGenerator(seed: 1)
        for i in 0..<a.count { a.base[i] = rng.nextUniformFloat() - 0.5 }
        for i in 0..<b.count { b.base[i] = rng.nextUniformFloat() - 0.5 }
        let ldb = transposeB ? k : n
        BLAS.setThreads(threads)
        let library = bestRate(flops: 2 * Double(m * n * k)) {
            BLAS.gemm(transposeA: false, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                      a: a.base, lda: k, b: b.base, ldb: ldb, beta: 0, c: out.base, ldc: n)
        }
        BLAS.useCallerThreadOnly()
        let par = Parallelism(threads: threads)
        let split = bestRate(flops: 2 * Double(m * n * k)) {
            parallelGemm(transposeA: false, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                         a: a.base, lda: k, b: b.base, ldb: ldb, beta: 0, c: out.base, ldc: n, parallelism: par)
        }
        return GemmResult(label: label, m: m, n: n, k: k, gflops: library, splitGFLOPs: split)
    }

    /// GFLOP/s of the median of repeated runs (at least 3, up to 0.6 s), after one warm-up run.
    private func bestRate(flops: Double, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        var spent = 0.0
        while times.count < 3 || (spent < 0.6 && times.count < 50) {
            let t = seconds(body)
            times.append(t)
            spent += t
        }
        return flops / median(times) / 1e9
    }

    private func measureSteps(_ c: Case, sgemmRate: Double, gemms: [GemmResult]) throws -> StepResult {
        let par = Parallelism(threads: threads)
        let model = try GPT(config: c.config, maxBatch: c.batch, maxLength: c.length, parallelism: par)
        model.initializeParameters(seed: 1)
        let optimizer = AdamW(layout: model.layout)
        var rng = SeededGenerator(seed: 2)
        let n = c.batch * c.length
        let tokens = (0..<n).map { _ in Int32(rng.next() % UInt64(c.config.vocabSize)) }
        let targets = (0..<n).map { _ in Int32(rng.next() % UInt64(c.config.vocabSize)) }
        var forward: [Double] = [], backward: [Double] = [], update: [Double] = [], total: [Double] = []
        var allocations: UInt64 = 0
        for i in 0...steps {
            let timed = i > 0
            if timed { tributary_allocation_counting_start() }
            var f = 0.0, b = 0.0
            let u = try seconds {
                f = try seconds {
                    _ = try tokens.withUnsafeBufferPointer { tk in
                        try targets.withUnsafeBufferPointer { try model.forward(tokens: tk, targets: $0, batch: c.batch, length: c.length) }
                    }
                }
                b = try seconds {
                    model.zeroGradients()
                    try model.backward()
                }
            }
            let o = seconds {
                let norm = gradientNorm(model.gradients, parallelism: par)
                optimizer.step(parameters: model.parameters, gradients: model.gradients, learningRate: 1e-4,
                               gradientScale: norm > 1 ? 1 / norm : 1, parallelism: par)
            }
            if timed {
                let counted = tributary_allocation_counting_stop()
                allocations = counted == UInt64.max ? UInt64.max : allocations &+ counted
                forward.append(f); backward.append(b); update.append(o); total.append(u + o)
            }
        }
        let stepSeconds = median(total)
        let tokensPerSecond = Double(n) / stepSeconds
        let flops = c.config.trainingFLOPsPerToken(sequenceLength: c.length)
        let gflops: Double = flops * tokensPerSecond / 1e9
        let perStep: Double? = allocations == UInt64.max ? nil : Double(allocations) / Double(steps)
        let forwardMs: Double = median(forward) * 1e3
        let backwardMs: Double = median(backward) * 1e3
        let optimizerMs: Double = median(update) * 1e3
        return StepResult(
            name: c.name, parameters: model.layout.count, batch: c.batch, length: c.length,
            msPerStep: stepSeconds * 1e3, forwardMs: forwardMs, backwardMs: backwardMs,
            optimizerMs: optimizerMs, tokensPerSecond: tokensPerSecond, flopsPerToken: flops,
            modelGFLOPs: gflops, sgemm1024GFLOPs: sgemmRate, fractionOfSgemm: gflops / sgemmRate,
            allocationsPerStep: perStep, gemms: gemms)
    }
}

