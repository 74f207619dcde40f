import Basics
import ArgumentParser
import Foundation
import Planner

/// "300B", "4M", "1.5e9" → a count.
func parseCount(_ text: String, flag: String) throws -> Double {
    let units: [Character: Double] = ["K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12]
    var body = text.uppercased()
    var scale = 1.0
    if let last = body.last, let unit = units[last] {
        scale = unit
        body.removeLast()
    }
    guard let value = Double(body), value > 0, value.isFinite else { throw ValidationError("\(flag) must be a positive count like 300B or 4M, got '\(text)'") }
    return value * scale
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Choose a layout for a model on a cluster and predict step time, tokens/s, MFU, memory and time to train."
    )

    @Option(help: "Cluster description (YAML): sites, devices, links.") var cluster: String
    @Option(help: "Model: a preset (125m … 1t, e.g. 30b; llama2-7b … llama3-70b) or \(ModelSpec.grammar).") var model = "gpt-1.3b"
    @Option(help: "Tokens to train on, e.g. 300B (default: 20 per parameter).") var tokens: String?
    @Option(help: "Global batch in tokens, e.g. 4M.") var batchTokens = "4M"
    @Option(help: "Global batch in sequences (instead of --batch-tokens).") var batchSequences: Int?
    @Option(help: "Sequence length (default: the model's; 2048 for GPT shapes).") var sequence: Int?
    @Option(help: "Precision of weights, gradients and matrix products: bf16, fp16 or fp32 (fp32 runs at the devices' FP32 rate).")
    var precision = "bf16"
    @Option(help: "Attention kernels: auto (fused where the device's trainers use FlashAttention: Ampere and newer), fused or unfused.")
    var attention = "auto"
    @Option(help: "Optimizer state in bytes per parameter (default: 12 for bf16/fp16 — FP32 master weights and Adam's two moments — 8 for fp32).")
    var optimizerBytes: Double?
    @Option(help: "How sites sync: auto, every-step (no DiLoCo), diloco, or diloco:H.") var sync = "auto"
    @Option(help: "Predict this layout instead of choosing one: \(GivenLayout.grammar); once per site (SITE= may be left out with one site).")
    var layout: [String] = []
    @Option(help: "Predict this pipeline through sites instead of choosing a layout: \(GivenPipeline.grammar) (quoted).")
    var pipeline: String?
    @Option(help: "More devices (YAML, the catalogue's layout).") var devices: String?
    @Option(help: "Measured micro-batch times (YAML: measurements with device, model, microBatch, seconds) that calibrate the devices' achievable fractions.")
    var profile: String?
    @Flag(help: "The largest dense model the cluster can hold for training, and how long 20 tokens per parameter take.") var maxModel = false
    @Flag(help: "Cost breakdown per site and link.") var explain = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            guard let text = try? String(contentsOfFile: cluster, encoding: .utf8) else { throw ValidationError("cannot read \(cluster)") }
            let spec = try ClusterSpec.load(yaml: text, source: cluster)
            let catalogue = try applyProfile(profile, to: try loadCatalogue(devicesFile: devices,
                                                                             measureCPU: spec.sites.contains { $0.device.lowercased().contains("cpu") },
                                                                             threads: UsableCores.count))
            try spec.checkDevices(in: catalogue, yaml: text, source: cluster)
            let choice = try SyncChoice(parsing: sync)
            let given = try layout.map { try GivenLayout(parsing: $0) }
            if maxModel {
                guard given.isEmpty, pipeline == nil else { throw ValidationError("--max-model chooses layouts itself: leave out --layout and --pipeline") }
                try printMaxModel(spec, catalogue: catalogue, choice: choice)
                return
            }
            var m = try ModelSpec.named(model)
            if let sequence { m.sequenceLength = sequence }
            let total = try tokens.map { try parseCount($0, flag: "--tokens") } ?? 20 * m.parameters
            let training = try trainingSpec(batchSequences: try batchSequences(for: m.sequenceLength), totalTokens: total)
            let result: PlanResult
            if let pipeline {
                guard given.isEmpty else { throw ValidationError("give --layout or --pipeline, not both") }
                let plan = try Planner.evaluate(cluster: spec, catalogue: catalogue, model: m, training: training,
                                                pipeline: try GivenPipeline(parsing: pipeline))
                result = PlanResult(cluster: spec, chosen: plan, runnersUp: [], candidatesEvaluated: 1)
            } else if given.isEmpty {
                result = try Planner.plan(cluster: spec, catalogue: catalogue, model: m, training: training, sync: choice)
            } else {
                let syncs = given.count > 1 ? choice.options : [SiteSync.everyStep]
                let plans = try syncs.map { try Planner.evaluate(cluster: spec, catalogue: catalogue, model: m, training: training, given: given, sync: $0) }
                let best = plans.min { $0.effectiveStepSeconds < $1.effectiveStepSeconds }!
                result = PlanResult(cluster: spec, chosen: best, runnersUp: [], candidatesEvaluated: plans.count)
            }
            if json {
                try printJSON(result)
                return
            }
            printPlan(result, spec: spec)
        }
    }

    /// The global batch in sequences: given, or the batch in tokens over the sequence length.
    private func batchSequences(for sequenceLength: Int) throws -> Int {
        if let batchSequences {
            guard batchSequences >= 1, batchSequences <= 100_000_000 else { throw ValidationError("--batch-sequences must be in 1...100000000, got \(batchSequences)") }
            return batchSequences
        }
        guard sequenceLength >= 1 else { throw ValidationError("--sequence must be positive, got \(sequenceLength)") }
        return max(1, Int(try parseCount(batchTokens, flag: "--batch-tokens") / Double(sequenceLength)))
    }

    private func printPlan(_ result: PlanResult, spec: ClusterSpec) {
        let p = result.chosen
        print(String(format: "%@ (%.2fB parameters, L%d h%d a%d, s%d) on %@ (%d devices), global batch %d sequences",
                     p.model.name as NSString, p.parameters / 1e9, p.model.layers, p.model.hidden, p.model.heads, p.model.sequenceLength,
                     p.cluster as NSString, spec.deviceCount, p.globalBatchSequences))
        print("")
        for s in p.sites {
            print(String(format: "  %@ %4d of %4d %@: %@, %d sequences/step, %.1f GB per device%@",
                         s.site.padding(toLength: max(12, s.site.count), withPad: " ", startingAt: 0) as NSString, s.devicesUsed, s.devicesAvailable,
                         s.device as NSString, s.layout.summary as NSString, s.sequencesPerStep, s.memoryPerDeviceGB, s.fits ? "" : " — DOES NOT FIT"))
        }
        if let span = p.pipelineAcrossSites { printSpanningPipeline(span) }
        let inPlan = Set(p.sites.map(\.site) + (p.pipelineAcrossSites?.order ?? []))
        for site in spec.sites where !inPlan.contains(site.name) {
            print("  \(site.name): unused — its \(site.count) \(site.device) cannot hold a replica of this model, or would only slow the step")
        }
        if p.sites.count > 1 {
            let sync = p.sync.interval == 1 ? "every step (\(p.sync.codec))" : "DiLoCo every \(p.sync.interval) steps (\(p.sync.codec))"
            let sender = spec.links?.perDevice ?? false ? "device" : "site"
            print(String(format: "  between sites: %@ on the ring %@, %.2f GB per sync per %@, adds %.2f s per step", sync as NSString,
                         p.crossSiteRing.joined(separator: " → ") as NSString, p.crossSiteBytesPerSync / 1e9, sender as NSString,
                         p.crossSiteSecondsPerStep))
        }
        print("")
        let t = p.throughput
        print(String(format: "step %.2f s, %@ tokens/s, MFU %.1f%% over the %d devices used", p.stepSeconds, formatCount(p.tokensPerSecond),
                     100 * p.mfu, t.devices))
        print(String(format: "per device: %@ tokens/s; %.1f TFLOP/s of model FLOPs (attention included), %.1f hardware (Megatron-LM's count, "
                     + "recomputation included: HFU %.1f%%), %.1f by 6·N·tokens", formatCount(t.tokensPerSecondPerDevice), t.modelTFLOPSPerDevice,
                     t.hardwareTFLOPSPerDevice, 100 * t.hfu, t.sixNTFLOPSPerDevice))
        if let t = p.timeToTrainSeconds {
            print(String(format: "time to train %@ tokens: %@ (%.1f days)", formatCount(p.tokensPerSecond * t), formatDuration(t), t / 86400))
        }
        if !p.fits { print(shortfall(p)) }
        if !result.runnersUp.isEmpty {
            print("\nrunners-up:")
            for r in result.runnersUp {
                print(String(format: "  sync every %3d steps (%@): step %.2f s — %@", r.sync.interval, r.sync.codec as NSString, r.stepSeconds, r.note as NSString))
            }
        }
        print("(\(result.candidatesEvaluated) layouts evaluated)")
        if explain {
            print("\ncost per step, slowest stage of each site:")
            for s in p.sites {
                let c = s.cost
                print(String(format: "  %@: %d micro-batches × stage %.3f s (matmul %.3f, memory-bound %.3f, TP all-reduce %.3f, pipeline sends %.3f) = %.2f s with the bubble",
                             s.site as NSString, c.microBatches, c.stageSeconds, c.computeSeconds, c.memoryBoundSeconds, c.tensorParallelSeconds,
                             c.pipelineSendSeconds, c.pipelineSeconds))
                print(String(format: "    + DP all-reduce %.3f s (exposed part; %.2f GB sent per device) + optimizer %.3f s; TP %.2f GB and pipeline %.2f GB sent per device",
                             c.dataParallelSeconds, c.dataParallelBytes / 1e9, c.optimizerSeconds, c.tensorParallelBytes / 1e9, c.pipelineBytes / 1e9))
                print(String(format: "    memory per device: weights %.1f GB, gradients %.1f, optimizer %.1f, activations %.1f",
                             c.weightMemory / 1e9, c.gradientMemory / 1e9, c.optimizerMemory / 1e9, c.activationMemory / 1e9))
            }
            let ring = p.crossSiteRing
            if ring.count > 1 {
                for (i, site) in ring.enumerated() {
                    let next = ring[(i + 1) % ring.count]
                    let link = spec.link(site, next)
                    print(String(format: "  link %@ → %@: %.2f Gbit/s, %.0f ms: %.2f GB per sync", site as NSString, next as NSString,
                                 link.gbps, link.latencyMs, p.crossSiteBytesPerSync / 1e9))
                }
            }
        }
    }

    /// The training description from the flags: batch, tokens, precision and optimizer state.
    private func trainingSpec(batchSequences: Int, totalTokens: Double) throws -> TrainingSpec {
        var training = TrainingSpec(globalBatchSequences: batchSequences, totalTokens: totalTokens)
        guard let format = Precision(rawValue: precision.lowercased()) else {
            throw ValidationError("--precision must be bf16, fp16 or fp32, got '\(precision)'")
        }
        training.use(format)
        guard let kernel = AttentionKernel(rawValue: attention.lowercased()) else {
            throw ValidationError("--attention must be auto, fused or unfused, got '\(attention)'")
        }
        training.attention = kernel
        if let optimizerBytes {
            guard optimizerBytes >= 0, optimizerBytes <= 64 else { throw ValidationError("--optimizer-bytes must be in 0...64, got \(optimizerBytes)") }
            training.optimizerBytesPerParameter = optimizerBytes
        }
        return training
    }

    /// The stages of a pipeline through several sites, grouped by site.
    private func printSpanningPipeline(_ span: SpanningPipeline) {
        print(String(format: "  one pipeline through %@, %d replicas of %d stages, micro-batch %d%@ (layers split by device speed and memory):",
                     span.order.joined(separator: " → ") as NSString, span.replicas, span.stages.count, span.microBatch,
                     span.recompute ? ", recompute" : ""))
        var first = 0
        while first < span.stages.count {
            var last = first
            while last + 1 < span.stages.count && span.stages[last + 1].site == span.stages[first].site { last += 1 }
            let group = span.stages[first...last]
            let worst = group.max { $0.memoryBytes / $0.capacityBytes < $1.memoryBytes / $1.capacityBytes }!
            print(String(format: "    %@ %@ on %d × %@%@: layers %@, up to %.1f of %.1f GB per device%@",
                         worst.site.padding(toLength: max(10, worst.site.count), withPad: " ", startingAt: 0) as NSString, (first == last ? "stage \(first + 1)" : "stages \(first + 1)–\(last + 1)") as NSString,
                         group.count * span.replicas * worst.tensorParallel, worst.device as NSString,
                         (worst.tensorParallel > 1 ? " (TP\(worst.tensorParallel) per stage)" : "") as NSString,
                         group.map { String($0.layers) }.joined(separator: ",") as NSString, worst.memoryBytes / 1e9, worst.capacityBytes / 1e9,
                         group.allSatisfy(\.fits) ? "" : " — DOES NOT FIT"))
            first = last + 1
        }
        print(String(format: "    %d micro-batches × slowest stage %.3f s = %.2f s, + DP all-reduce %.3f s + optimizer %.3f s; %.2f GB cross between sites per step",
                     span.microBatches, span.slowestStage, span.pipelineSeconds, span.dataParallelSeconds, span.optimizerSeconds,
                     span.crossSiteBytesPerStep / 1e9))
    }

    /// Says how far a plan is from fitting and what would fix it.
    private func shortfall(_ p: Plan) -> String {
        var lines = ["the model does not fit:"]
        for s in p.sites where !s.fits {
            lines.append(String(format: "  %@ needs %.1f GB per device in %@ (%@) but has %.1f GB usable: short by %.1f GB.",
                                s.site as NSString, s.memoryPerDeviceGB, p.sites.count == 1 && !s.layout.recompute ? "this layout" : "its most compact layout",
                                s.layout.summary as NSString, s.memoryCapacityGB, s.memoryPerDeviceGB - s.memoryCapacityGB))
        }
        if let span = p.pipelineAcrossSites, let worst = span.stages.max(by: { $0.memoryBytes - $0.capacityBytes < $1.memoryBytes - $1.capacityBytes }) {
            lines.append(String(format: "  Even one pipeline through all sites needs %.1f GB on a %@ stage at %@ (%.1f GB usable): short by %.1f GB.",
                                worst.memoryBytes / 1e9, worst.device as NSString, worst.site as NSString, worst.capacityBytes / 1e9,
                                (worst.memoryBytes - worst.capacityBytes) / 1e9))
        }
        lines.append("  Fixes: more devices at that site (deeper pipelines split the weights further), devices with more memory, or a smaller model (see --max-model).")
        return lines.joined(separator: "\n")
    }

    private func printMaxModel(_ spec: ClusterSpec, catalogue: DeviceCatalogue, choice: SyncChoice) throws {
        var largest: (ModelSpec, PlanResult)?
        for var m in ModelSpec.presets where m.name.hasPrefix("gpt-") {
            m.sequenceLength = sequence ?? m.sequenceLength
            let training = try trainingSpec(batchSequences: try batchSequences(for: m.sequenceLength), totalTokens: 20 * m.parameters)
            let result = try Planner.plan(cluster: spec, catalogue: catalogue, model: m, training: training, sync: choice)
            if result.chosen.fits { largest = (m, result) } else { break }
        }
        guard let (m, result) = largest else {
            let answer = "no preset fits this cluster for training, not even \(ModelSpec.presets[0].name)"
            // With --json standard output holds JSON only: the answer is then an error.
            if json { throw ValidationError(answer) }
            print(answer)
            return
        }
        if json {
            try printJSON(result)
            return
        }
        print("largest preset that fits for training: \(m.name) (\(String(format: "%.2f", m.parameters / 1e9))B parameters)")
        printPlan(result, spec: spec)
    }
}
