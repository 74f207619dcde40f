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
    @Option(help: "Model: a preset (125m … 1t, e.g. 30b) or L<layers>-H<hidden>-A<heads>.") var model = "gpt-1.3b"
    @Option(help: "Tokens to train on, e.g. 300B (default: 20 per parameter).") var tokens: String?
    @Option(help: "Global batch in tokens, e.g. 4M.") var batchTokens = "4M"
    @Option(help: "Sequence length.") var sequence = 2048
    @Option(help: "Precision of weights and gradients: bf16, fp16 or fp32.") var precision = "bf16"
    @Option(help: "Optimizer state in bytes per parameter (default: 12 for bf16/fp16 — FP32 master weights and Adam's two moments — 8 for fp32).")
    var optimizerBytes: Double?
    @Option(help: "More devices (YAML, the catalogue's layout).") var devices: String?
    @Flag(help: "The largest dense model the cluster can hold for training, and how long 20 tokens per parameter take.") var maxModel = false
    @Flag(help: "Cost breakdown per site and link.") var explain = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            guard let text = try? String(contentsOfFile: cluster, encoding: .utf8) else { throw ValidationError("cannot read \(cluster)") }
            let spec = try ClusterSpec.load(yaml: text, source: cluster)
            let catalogue = try loadCatalogue(devicesFile: devices, measureCPU: spec.sites.contains { $0.device.lowercased().contains("cpu") }, threads: UsableCores.count)
            let batchSequences = max(1, Int(try parseCount(batchTokens, flag: "--batch-tokens") / Double(sequence)))
            if maxModel {
                try printMaxModel(spec, catalogue: catalogue, batchSequences: batchSequences)
                return
            }
            var m = try ModelSpec.named(model)
            m.sequenceLength = sequence
            let total = try tokens.map { try parseCount($0, flag: "--tokens") } ?? 20 * m.parameters
            let training = try trainingSpec(batchSequences: batchSequences, totalTokens: total)
            let result = try Planner.plan(cluster: spec, catalogue: catalogue, model: m, training: training)
            if json {
                try printJSON(result)
                return
            }
            printPlan(result, spec: spec)
        }
    }

    private func printPlan(_ result: PlanResult, spec: ClusterSpec) {
        let p = result.chosen
        print(String(format: "%@ (%.2fB parameters, L%d h%d a%d, s%d) on %@ (%d devices), global batch %d sequences",
                     p.model.name as NSString, p.parameters / 1e9, p.model.layers, p.model.hidden, p.model.heads, p.model.sequenceLength,
                     p.cluster as NSString, spec.deviceCount, p.globalBatchSequences))
        print("")
        for s in p.sites {
            let l = s.layout
            print(String(format: "  %@ %4d of %4d %@: TP%d PP%d DP%d, micro-batch %d%@%@, %d sequences/step, %.1f GB per device%@",
                         s.site.padding(toLength: max(12, s.site.count), withPad: " ", startingAt: 0) as NSString, s.devicesUsed, s.devicesAvailable, s.device as NSString, l.tensorParallel, l.pipelineStages,
                         l.dataParallel, l.microBatch, l.recompute ? ", recompute" : "", l.shardOptimizer ? ", ZeRO-1" : "",
                         s.sequencesPerStep, s.memoryPerDeviceGB, s.fits ? "" : " — DOES NOT FIT"))
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
        print(String(format: "step %.2f s, %@ tokens/s, MFU %.1f%%", p.stepSeconds, formatCount(p.tokensPerSecond), 100 * p.mfu))
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
        switch precision.lowercased() {
        case "bf16", "fp16": break
        case "fp32":
            training.weightBytes = 4
            training.gradientBytes = 4
            training.optimizerBytesPerParameter = 8
        default: throw ValidationError("--precision must be bf16, fp16 or fp32, got '\(precision)'")
        }
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
            print(String(format: "    %@ %@ on %d × %@: layers %@, up to %.1f of %.1f GB per device%@",
                         worst.site.padding(toLength: max(10, worst.site.count), withPad: " ", startingAt: 0) as NSString, (first == last ? "stage \(first + 1)" : "stages \(first + 1)–\(last + 1)") as NSString,
                         group.count * span.replicas, worst.device as NSString,
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
            lines.append(String(format: "  %@ needs %.1f GB per device in its most compact layout (TP%d PP%d%@%@) but has %.1f GB usable: short by %.1f GB.",
                                s.site as NSString, s.memoryPerDeviceGB, s.layout.tensorParallel, s.layout.pipelineStages,
                                s.layout.recompute ? ", recompute" : "", s.layout.shardOptimizer ? ", ZeRO-1" : "",
                                s.memoryCapacityGB, s.memoryPerDeviceGB - s.memoryCapacityGB))
        }
        if let span = p.pipelineAcrossSites, let worst = span.stages.max(by: { $0.memoryBytes - $0.capacityBytes < $1.memoryBytes - $1.capacityBytes }) {
            lines.append(String(format: "  Even one pipeline through all sites needs %.1f GB on a %@ stage at %@ (%.1f GB usable): short by %.1f GB.",
                                worst.memoryBytes / 1e9, worst.device as NSString, worst.site as NSString, worst.capacityBytes / 1e9,
                                (worst.memoryBytes - worst.capacityBytes) / 1e9))
        }
        lines.append("  Fixes: more devices at that site (deeper pipelines split the weights further), devices with more memory, or a smaller model (see --max-model).")
        return lines.joined(separator: "\n")
    }

    private func printMaxModel(_ spec: ClusterSpec, catalogue: DeviceCatalogue, batchSequences: Int) throws {
        var largest: (ModelSpec, PlanResult)?
        for var m in ModelSpec.presets {
            m.sequenceLength = sequence
            let result = try Planner.plan(cluster: spec, catalogue: catalogue, model: m,
                                          training: try trainingSpec(batchSequences: batchSequences, totalTokens: 20 * m.parameters))
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
