import Basics
import Foundation
import ModelCore
import Planner

/// This machine's CPU as a planner device, calibrated on the engine's own training steps: the
/// sgemm rate and memory bandwidth are measured, and the achievable fraction is what makes the
/// planner's cost model reproduce full training steps of `bench engine`'s configs (forward,
/// backward and AdamW, in fp32).
public struct CPUCalibration: Codable, Sendable {
    public struct Case: Codable, Sendable {
        public var name: String
        public var measuredSeconds: Double
        /// The cost model's matrix-product seconds at the full sgemm rate, and its memory-bound
        /// and optimizer seconds, for the same config.
        public var matrixSecondsAtPeak: Double
        public var otherSeconds: Double
        /// matrixSecondsAtPeak / (measured − other).
        public var achievable: Double
    }

    public var threads: Int
    /// sgemm GFLOP/s split by rows over the engine's threads (what the model runs).
    public var sgemmGFLOPs: Double
    /// One thread copying (the engine's memory-bound kernels run on its threads in turn).
    public var memoryBandwidthGBs: Double
    /// Matrix width at which products run at half the sgemm rate, fitted to the products of
    /// the model's width that `bench engine` times (its h × (sgemm / rate − 1), the median).
    public var narrowMatrixWidth: Double
    /// The median of the cases' achievable fractions.
    public var achievable: Double
    public var cases: [Case]

    /// The engine trains in fp32: 4-byte weights and gradients, Adam's two fp32 moments.
    public static func trainingSpec(batch: Int) -> TrainingSpec {
        var training = TrainingSpec(globalBatchSequences: batch)
        training.useFP32()
        return training
    }

    /// The engine's GPT as the planner sizes it.
    public static func modelSpec(_ config: GPTConfig, sequenceLength: Int, name: String) -> ModelSpec {
        ModelSpec(name: name, layers: config.layers, hidden: config.channels, heads: config.heads, sequenceLength: sequenceLength,
                  vocabulary: config.vocabSize)
    }

    /// This CPU at `speed` (a fraction of the calibrated threads, as the compute throttle
    /// emulates) with the calibrated achievable fraction.
    public func device(name: String, speed: Double = 1, nicGbps: Double = 1) -> DeviceSpec {
        var d = DeviceSpec(name: name, bf16TFLOPS: sgemmGFLOPs * speed / 1000, achievable: achievable,
                           memoryGB: Double(ProcessInfo.processInfo.physicalMemory) / 1e9,
                           memoryBandwidthTBs: memoryBandwidthGBs * speed / 1000, intraNodeGBs: 0, devicesPerNode: 1, nicGbps: nicGbps)
        d.fp32TFLOPS = d.bf16TFLOPS
        d.narrowMatrixWidth = narrowMatrixWidth
        d.vendor = "this machine (\(threads) thread(s), fp32, calibrated by bench engine)"
        d.confidence = "measured"
        return d
    }

    /// The cost model's step for one engine config on a device with achievable fraction 1.
    public static func modelledStep(_ c: EngineBenchmark.Case, device: DeviceSpec) throws -> GroupCost {
        let site = try SiteResources(site: SiteSpec(name: "cpu", device: device.name, count: 1), catalogue: DeviceCatalogue(devices: [device]))
        let layout = GroupLayout(tensorParallel: 1, pipelineStages: 1, dataParallel: 1, microBatch: c.batch, recompute: false)
        return CostModel.evaluate(model: modelSpec(c.config, sequenceLength: c.length, name: c.name), training: trainingSpec(batch: c.batch),
                                  site: site, layout: layout)
    }

    /// Measures sgemm, memory bandwidth and full training steps of `cases` on `threads` threads.
    public static func measure(threads: Int, steps: Int, cases: [EngineBenchmark.Case], log: (String) -> Void) throws -> CPUCalibration {
        let bench = EngineBenchmark(threads: threads, steps: steps)
        let report = try bench.run(cases: cases, log: log)
        let sgemm = bench.measureGemm(label: "1024^3", m: 1024, n: 1024, k: 1024, transposeB: false).splitGFLOPs
        let bandwidth = measureCopyBandwidth() / 1e9
        var widths: [Double] = []
        for (c, r) in zip(cases, report.configs) {
            let h = Double(c.config.channels)
            let narrow = r.gemms.filter { $0.k == c.config.channels }.map(\.splitGFLOPs)
            guard !narrow.isEmpty else { continue }
            let ratio = narrow.reduce(0, +) / Double(narrow.count) / sgemm
            widths.append(max(0, h * (1 / ratio - 1)))
        }
        var calibration = CPUCalibration(threads: threads, sgemmGFLOPs: sgemm, memoryBandwidthGBs: bandwidth,
                                         narrowMatrixWidth: widths.isEmpty ? CostModel.narrowMatrixWidth : median(widths), achievable: 1, cases: [])
        let peak = calibration.device(name: "local-cpu")
        for (c, r) in zip(cases, report.configs) {
            let cost = try modelledStep(c, device: peak)
            let other = cost.memoryBoundSeconds + cost.optimizerSeconds
            let measured = r.msPerStep / 1e3
            calibration.cases.append(Case(name: c.name, measuredSeconds: measured, matrixSecondsAtPeak: cost.computeSeconds, otherSeconds: other,
                                          achievable: min(1, cost.computeSeconds / max(measured - other, 1e-9))))
        }
        calibration.achievable = calibration.cases.isEmpty ? 1 : median(calibration.cases.map(\.achievable))
        return calibration
    }
}

/// Bytes per second of one thread copying 256 MB (read + write), the best of three.
public func measureCopyBandwidth() -> Double {
    let count = 64 << 20
    let a = UnsafeMutablePointer<Float>.allocate(capacity: count), b = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { a.deallocate(); b.deallocate() }
    a.initialize(repeating: 1, count: count)
    b.initialize(repeating: 0, count: count)
    var best = Double.infinity
    for _ in 0..<3 {
        let start = DispatchTime.now().uptimeNanoseconds
        b.update(from: a, count: count)
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return 2 * Double(count * 4) / best
}
