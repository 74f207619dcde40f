import Basics
import Foundation

/// How sites combine their gradients.
public struct SiteSync: Codable, Sendable, Equatable, Hashable {
    /// Steps between syncs: 1 is an all-reduce every step (DDP across sites); more is DiLoCo.
    public var interval: Int
    /// Wire codec of the cross-site exchange and its bytes per value.
    public var codec: String
    public var bytesPerValue: Double
    /// Planning assumption: tokens this strategy needs for the loss that syncing every step
    /// reaches with 1. DiLoCo reports parity at scale with H up to 500 (Douillard et al. 2023;
    /// INTELLECT-1 with H=100 and int8); Tributary's own small runs lose more (README,
    /// `experiment strategies`), so fewer syncs are charged a growing premium.
    public var tokenPremium: Double

    public init(interval: Int, codec: String, bytesPerValue: Double, tokenPremium: Double) {
        self.interval = interval
        self.codec = codec
        self.bytesPerValue = bytesPerValue
        self.tokenPremium = tokenPremium
    }

    public static let everyStep = SiteSync(interval: 1, codec: "bf16", bytesPerValue: 2, tokenPremium: 1)
    /// The DiLoCo options the search tries, cheapest last.
    public static let options: [SiteSync] = [
        .everyStep,
        SiteSync(interval: 10, codec: "int8", bytesPerValue: 1.001, tokenPremium: 1.05),
        SiteSync(interval: 50, codec: "int8", bytesPerValue: 1.001, tokenPremium: 1.10),
        SiteSync(interval: 100, codec: "int4", bytesPerValue: 0.501, tokenPremium: 1.15),
        SiteSync(interval: 500, codec: "int4", bytesPerValue: 0.501, tokenPremium: 1.30),
    ]
}

/// A plan's throughput in the conventions published runs count in, per device in use.
public struct Throughput: Codable, Sendable, Equatable {
    public var tokensPerSecond: Double
    /// Devices the plan uses (not every device of the cluster).
    public var devices: Int
    /// Model FLOPs per token (three passes, attention included: PaLM's MFU count and
    /// Megatron-LM's without recomputation), and the FLOPs the hardware runs (Megatron-LM's
    /// Eq. 3 where activations are recomputed, as its "TFLOP/s per GPU" counts).
    public var modelFLOPsPerToken: Double
    public var hardwareFLOPsPerToken: Double
    /// 6 × parameters per token (no attention term).
    public var sixNFLOPsPerToken: Double
    /// Sum of the used devices' peaks at the run's precision.
    public var peakFLOPS: Double

    public var tokensPerSecondPerDevice: Double { tokensPerSecond / Double(max(1, devices)) }
    public var modelTFLOPSPerDevice: Double { tokensPerSecondPerDevice * modelFLOPsPerToken / 1e12 }
    public var hardwareTFLOPSPerDevice: Double { tokensPerSecondPerDevice * hardwareFLOPsPerToken / 1e12 }
    public var sixNTFLOPSPerDevice: Double { tokensPerSecondPerDevice * sixNFLOPsPerToken / 1e12 }
    /// Model FLOPs utilisation and hardware FLOPs utilisation over the used devices' peaks.
    public var mfu: Double { peakFLOPS > 0 ? tokensPerSecond * modelFLOPsPerToken / peakFLOPS : 0 }
    public var hfu: Double { peakFLOPS > 0 ? tokensPerSecond * hardwareFLOPsPerToken / peakFLOPS : 0 }
}

/// One site's part of a plan.
public struct SitePlan: Codable, Sendable, Equatable {
    public var site: String
    public var device: String
    /// Devices the layout uses (at most the site's count).
    public var devicesUsed: Int
    public var devicesAvailable: Int
    public var layout: GroupLayout
    public var cost: GroupCost
    /// Sequences of each global batch this site trains on.
    public var sequencesPerStep: Int
    /// Whether every device's memory holds its share.
    public var fits: Bool
    /// Memory a device may use (its memory × `Planner.usableMemory`), GB.
    public var memoryCapacityGB: Double
    public var memoryPerDeviceGB: Double { cost.memoryBytes / 1e9 }
}

/// A complete plan: what each site runs, how the sites sync, and what it predicts.
public struct Plan: Codable, Sendable, Equatable {
    public var cluster: String
    public var model: ModelSpec
    public var parameters: Double
    public var globalBatchSequences: Int
    public var sites: [SitePlan]
    public var sync: SiteSync
    /// The sites in the order of the ring they sync on.
    public var crossSiteRing: [String]
    /// Bytes each site (each device, with per-device links) sends per sync, and seconds per
    /// step the sync adds.
    public var crossSiteBytesPerSync: Double
    public var crossSiteSecondsPerStep: Double
    public var stepSeconds: Double
    public var tokensPerSecond: Double
    /// Model FLOPs (no recomputation) per second over the sum of the used devices' peaks.
    public var mfu: Double
    /// Throughput in the conventions published runs use.
    public var throughput: Throughput
    public var timeToTrainSeconds: Double?
    public var fits: Bool
    /// Set when the plan is one pipeline through several sites instead of a group per site
    /// (then `sites` is empty and the sites meet inside every step).
    public var pipelineAcrossSites: SpanningPipeline?
    /// Why this plan is where it is in the ranking (filled for runners-up).
    public var note: String = ""

    /// Step time × the sync's token premium: what the search minimises.
    public var effectiveStepSeconds: Double { stepSeconds * sync.tokenPremium }
}

/// The planner's answer: the chosen plan and the best few that lost, with why.
public struct PlanResult: Codable, Sendable, Equatable {
    /// The cluster planned for (the simulator replays the plan on its links).
    public var cluster: ClusterSpec
    public var chosen: Plan
    public var runnersUp: [Plan]
    public var candidatesEvaluated: Int

    public init(cluster: ClusterSpec, chosen: Plan, runnersUp: [Plan], candidatesEvaluated: Int) {
        self.cluster = cluster
        self.chosen = chosen
        self.runnersUp = runnersUp
        self.candidatesEvaluated = candidatesEvaluated
    }
}

extension Planner {
    /// Tensor-parallel degrees tried: powers of two inside a node.
    static func tensorParallelOptions(_ devicesPerNode: Int) -> [Int] {
        [1, 2, 4, 8, 16].filter { $0 <= devicesPerNode && devicesPerNode % $0 == 0 }
    }

    /// Pipeline depths tried: every divisor-friendly depth up to the layer count (uneven last
    /// stages allowed), kept to a few dozen values.
    static func pipelineOptions(layers: Int, devices: Int) -> [Int] {
        var options: Set<Int> = [1]
        var p = 1
        while p <= min(layers, devices) {
            options.insert(p)
            p *= 2
        }
        for d in 1...min(layers, 128) where layers % d == 0 && d <= devices { options.insert(d) }
        return options.sorted()
    }

    /// The fastest layout of one site for `sequences` per step, or the one that comes closest
    /// to fitting when none fits. Evaluates every TP × PP × micro-batch × recompute × ZeRO stage
    /// combination; DP takes the rest of the devices.
    static func bestSiteLayout(model: ModelSpec, training: TrainingSpec, site: SiteResources, sequences: Int,
                               evaluated: inout Int) -> SitePlan {
        var best: SitePlan?
        var closest: SitePlan?
        let capacity = site.device.memoryGB * 1e9 * usableMemory
        var share = training
        share.globalBatchSequences = max(1, sequences)
        for tp in tensorParallelOptions(site.devicesPerNode) where model.heads % tp == 0 {
            for pp in pipelineOptions(layers: model.layers, devices: site.count / tp) {
                let most = min(site.count / (tp * pp), max(1, sequences))
                guard most >= 1 else { continue }
                // All the replicas that fit, and fewer (powers of two, and what fills one node):
                // more devices must never force a slower layout.
                var replicaOptions: Set<Int> = [most]
                if most <= 64 {
                    replicaOptions.formUnion(1...most)
                } else {
                    var r = 1
                    while r < most { replicaOptions.insert(r); r *= 2 }
                    for k in 1...64 { replicaOptions.insert(max(1, most * k / 64)) }
                }
                for dp in replicaOptions.sorted() {
                // Dominated candidates are skipped (same answer, less work): recomputation where
                // the same layout fits without it (more work, no less communication exposed), and
                // ZeRO-2 where ZeRO-1 fits (the same but for more traffic).
                // Bit (zero stage × 8 + micro-batch index) of what fitted: micro-batches are powers of two.
                var fitsWithoutRecompute: UInt64 = 0, fitsZeroOne: UInt64 = 0
                for recompute in [false, true] {
                    fitsZeroOne = 0
                    // ZeRO-1 costs nothing over plain replicas in this model and frees memory, so
                    // replicas shard at least the optimizer state.
                    for zero in dp == 1 ? [0] : [1, 2, 3] {
                        for b in microBatches where b <= max(1, sequences / dp) {
                            let bit: UInt64 = 1 << UInt64(zero * 8 + b.trailingZeroBitCount)
                            if recompute && fitsWithoutRecompute & bit != 0 { continue }
                            if zero == 2 && fitsZeroOne & (bit >> 8) != 0 { continue }
                            let layout = GroupLayout(tensorParallel: tp, pipelineStages: pp, dataParallel: dp, microBatch: b,
                                                     recompute: recompute, zeroStage: zero)
                            let cost = CostModel.evaluate(model: model, training: share, site: site, layout: layout)
                            evaluated += 1
                            let fits = cost.memoryBytes <= capacity
                            if fits && !recompute { fitsWithoutRecompute |= bit }
                            if fits && zero == 1 { fitsZeroOne |= bit }
                            // Plans are built only for candidates that can win (the search's inner loop).
                            if fits, let b = best, cost.stepSeconds > b.cost.stepSeconds * (1 + 1e-12) { continue }
                            if !fits, let c = closest, cost.memoryBytes >= c.cost.memoryBytes { break }
                            let plan = SitePlan(site: site.name, device: site.device.name, devicesUsed: layout.devices,
                                                devicesAvailable: site.count, layout: layout, cost: cost, sequencesPerStep: sequences,
                                                fits: fits, memoryCapacityGB: capacity / 1e9)
                            if fits {
                                if best == nil || isBetter(plan, than: best!) { best = plan }
                            } else {
                                closest = plan
                                // Memory only grows with the micro-batch: larger ones do not fit either.
                                break
                            }
                        }
                    }
                }
                }
            }
        }
        return best ?? closest!
    }

    /// Faster wins; ties go to fewer devices, then to the simpler layout (deterministic).
    static func isBetter(_ a: SitePlan, than b: SitePlan) -> Bool {
        if abs(a.cost.stepSeconds - b.cost.stepSeconds) > 1e-12 * max(a.cost.stepSeconds, b.cost.stepSeconds) {
            return a.cost.stepSeconds < b.cost.stepSeconds
        }
        let ka = (a.devicesUsed, a.layout.tensorParallel, a.layout.pipelineStages, a.layout.recompute ? 1 : 0, a.layout.zeroStage, a.layout.microBatch)
        let kb = (b.devicesUsed, b.layout.tensorParallel, b.layout.pipelineStages, b.layout.recompute ? 1 : 0, b.layout.zeroStage, b.layout.microBatch)
        return ka < kb
    }

    /// Plans `model` on `cluster`: every site trains a replica group on its share of the batch
    /// (shares balanced so that sites finish a step together), and sites sync every step or
    /// every H steps (DiLoCo) through a codec. Deterministic: the same inputs give the same plan.
    public static func plan(cluster: ClusterSpec, catalogue: DeviceCatalogue, model: ModelSpec, training: TrainingSpec,
                            sync choice: SyncChoice = .auto) throws -> PlanResult {
        let sites = try resources(cluster: cluster, catalogue: catalogue, model: model, training: training)
        var evaluated = 0

        // Balance the batch: start from peak compute, then re-split by each site's predicted rate.
        // Balance the batch: the smallest step time T at which the sites together can take
        // the whole batch, each site taking the most sequences it can finish within T. Each
        // site's best time for a share only falls as devices are added, so T does too.
        // Sites alike in all but name (the same devices, count and links) share one search.
        let kind = sites.indices.map { i in
            sites.indices.first { j in var other = sites[j]; other.name = sites[i].name; return other == sites[i] }!
        }
        var cache: [[Int: SitePlan]] = Array(repeating: [:], count: sites.count)
        func best(_ i: Int, _ sequences: Int) -> SitePlan {
            var plan: SitePlan
            if let hit = cache[kind[i]][sequences] {
                plan = hit
            } else {
                plan = bestSiteLayout(model: model, training: training, site: sites[kind[i]], sequences: sequences, evaluated: &evaluated)
                cache[kind[i]][sequences] = plan
            }
            plan.site = sites[i].name
            return plan
        }
        let total = training.globalBatchSequences
        func capacity(_ i: Int, within t: Double) -> Int {
            // A site's time is not monotone in its share (micro-batches split unevenly), so the
            // whole batch is tried first and the search below is a bound, not an exact answer.
            let whole = best(i, total)
            if whole.fits && whole.cost.stepSeconds <= t { return total }
            var lo = 0, hi = total
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                let p = best(i, mid)
                if p.fits && p.cost.stepSeconds <= t { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }
        var hiT = (0..<sites.count).map { i -> Double in let p = best(i, total); return p.fits ? p.cost.stepSeconds : .infinity }.min()!
        var plans: [SitePlan]
        if hiT.isFinite {
            var loT = 0.0
            for _ in 0..<40 where hiT - loT > 1e-9 * hiT {
                let mid = (loT + hiT) / 2
                if (0..<sites.count).reduce(0, { $0 + capacity($1, within: mid) }) >= total { hiT = mid } else { loT = mid }
            }
            // Fill the batch at T, fastest-rate sites first, so shares add up exactly.
            var remaining = total
            var shares = [Int](repeating: 0, count: sites.count)
            for i in 0..<sites.count {
                shares[i] = min(remaining, capacity(i, within: hiT))
                remaining -= shares[i]
            }
            // What the bounds left over goes where it costs least.
            if remaining > 0 {
                let i = (0..<sites.count).min { a, b in
                    let (pa, pb) = (best(a, shares[a] + remaining), best(b, shares[b] + remaining))
                    return pa.fits != pb.fits ? pa.fits : pa.cost.stepSeconds < pb.cost.stepSeconds
                }!
                shares[i] += remaining
            }
            plans = (0..<sites.count).filter { shares[$0] > 0 }.map { best($0, shares[$0]) }
        } else {
            // No single site holds the model: split by peak compute and report what does not fit.
            let shares = split(total, by: sites.map { $0.device.sustainedFLOPS(training.precision) * Double($0.count) })
            plans = (0..<sites.count).map { best($0, shares[$0]) }
        }

        // Cross-site sync: every step, or DiLoCo every H steps through a codec.
        var candidates: [Plan] = []
        for sync in plans.count == 1 ? [.everyStep] : choice.options {
            candidates.append(assemble(cluster: cluster, sites: sites, plans: plans, model: model, training: training, sync: sync))
        }
        // Or one pipeline through several sites: the way to hold a model no site holds alone,
        // and sometimes faster on fast links.
        if choice.allowsSpanningPipeline, let span = bestSpanningPipeline(model: model, training: training, sites: sites, cluster: cluster, evaluated: &evaluated) {
            candidates.append(makePlan(cluster: cluster, sites: sites, model: model, training: training, sitePlans: [], sync: .everyStep,
                                       ring: CrossSiteRing(order: [], bytesPerSync: span.crossSiteBytesPerStep, seconds: 0),
                                       stepSeconds: span.stepSeconds, fits: span.fits, pipelineAcrossSites: span))
        }
        // The objective is time to the same loss: step time × the sync's token premium, among
        // the plans that fit when any does. Each option's time only falls when links get faster
        // or devices are added, so the best does too.
        let chosen = candidates.min { (!$0.fits ? 1 : 0, $0.effectiveStepSeconds, $0.sync.interval) < (!$1.fits ? 1 : 0, $1.effectiveStepSeconds, $1.sync.interval) }!
        var runnersUp: [Plan] = []
        for var c in candidates where c != chosen {
            if !c.fits && chosen.fits {
                c.note = c.pipelineAcrossSites != nil ? "one pipeline through the sites does not fit their memory"
                    : "a group per site does not fit: no site holds a replica of the model alone"
            } else if let span = c.pipelineAcrossSites {
                c.note = String(format: "one pipeline through %@ (%d stages × %d replicas): %d micro-batches × slowest stage %.3f s, activations crossing between sites every micro-batch",
                                span.order.joined(separator: " → "), span.stages.count, span.replicas, span.microBatches, span.slowestStage)
            } else if chosen.pipelineAcrossSites != nil {
                c.note = String(format: "a group per site, syncing every %d step(s): step %.2f s", c.sync.interval, c.stepSeconds)
            } else if c.stepSeconds > chosen.stepSeconds {
                c.note = String(format: "syncing every %d step(s) adds %.2f s per step (%.0f%% of the step)", c.sync.interval,
                                c.crossSiteSecondsPerStep, 100 * c.crossSiteSecondsPerStep / c.stepSeconds)
            } else {
                c.note = String(format: "%.1f%% faster per step, but syncing only every %d steps (%@) is assumed to need %.0f%% more tokens",
                                100 * (1 - c.stepSeconds / chosen.stepSeconds), c.sync.interval, c.sync.codec, 100 * (c.sync.tokenPremium - 1))
            }
            runnersUp.append(c)
        }
        return PlanResult(cluster: cluster, chosen: chosen, runnersUp: runnersUp, candidatesEvaluated: evaluated)
    }

    /// A plan from each site's part and the sync between sites: the cross-site ring, step time,
    /// tokens/s, MFU and time to train.
    static func assemble(cluster: ClusterSpec, sites: [SiteResources], plans: [SitePlan], model: ModelSpec, training: TrainingSpec,
                         sync: SiteSync) -> Plan {
        let perDevice = cluster.links?.perDevice ?? false
        let values = CrossSiteRing.valuesPerSender(plans: plans, model: model, perDevice: perDevice)
        let ring = CrossSiteRing.best(sites: plans.map(\.site), cluster: cluster, values: values, bytesPerValue: sync.bytesPerValue)
        let step = plans.map(\.cost.stepSeconds).max()! + ring.seconds / Double(sync.interval)
        return makePlan(cluster: cluster, sites: sites, model: model, training: training, sitePlans: plans, sync: sync, ring: ring,
                        stepSeconds: step, fits: plans.allSatisfy(\.fits), pipelineAcrossSites: nil)
    }

    /// A plan with what follows from its step time: tokens/s, throughput in the common
    /// conventions and MFU over the devices the plan uses, and time to train (× the sync's token premium).
    static func makePlan(cluster: ClusterSpec, sites: [SiteResources], model: ModelSpec, training: TrainingSpec, sitePlans: [SitePlan],
                         sync: SiteSync, ring: CrossSiteRing, stepSeconds: Double, fits: Bool, pipelineAcrossSites: SpanningPipeline?) -> Plan {
        let tokensPerSecond = Double(training.globalBatchSequences * model.sequenceLength) / stepSeconds
        // Devices in use, their peak, and the share of tokens that recompute activations.
        var used = 0, peak = 0.0, recomputed = 0.0
        for plan in sitePlans {
            let device = sites.first { $0.name == plan.site }!.device
            used += plan.devicesUsed
            peak += device.peakFLOPS(training.precision) * Double(plan.devicesUsed)
            if plan.layout.recompute { recomputed += Double(plan.sequencesPerStep) / Double(training.globalBatchSequences) }
        }
        if let span = pipelineAcrossSites {
            for stage in span.stages {
                let device = sites.first { $0.name == stage.site }!.device
                used += span.replicas * stage.tensorParallel
                peak += device.peakFLOPS(training.precision) * Double(span.replicas * stage.tensorParallel)
            }
            recomputed = span.recompute ? 1 : 0
        }
        let hardwareFLOPsPerToken = model.trainingFLOPsPerToken + recomputed * (model.recomputeFLOPsPerToken - model.trainingFLOPsPerToken)
        let throughput = Throughput(tokensPerSecond: tokensPerSecond, devices: used, modelFLOPsPerToken: model.trainingFLOPsPerToken,
                                    hardwareFLOPsPerToken: hardwareFLOPsPerToken, sixNFLOPsPerToken: model.sixNFLOPsPerToken, peakFLOPS: peak)
        return Plan(
            cluster: cluster.name, model: model, parameters: model.parameters, globalBatchSequences: training.globalBatchSequences,
            sites: sitePlans, sync: sync, crossSiteRing: ring.order, crossSiteBytesPerSync: ring.bytesPerSync,
            crossSiteSecondsPerStep: ring.seconds / Double(sync.interval), stepSeconds: stepSeconds, tokensPerSecond: tokensPerSecond,
            mfu: throughput.mfu, throughput: throughput,
            timeToTrainSeconds: training.totalTokens > 0 ? training.totalTokens * sync.tokenPremium / tokensPerSecond : nil,
            fits: fits, pipelineAcrossSites: pipelineAcrossSites)
    }

    /// What a given layout predicts: each named site runs `layouts[site]` on its share of the
    /// batch (shares proportional to the sites' replicas) and the sites sync by `sync`. For
    /// checking the cost model against runs whose layout is known, and for "what would my
    /// current layout do".
    public static func evaluate(cluster: ClusterSpec, catalogue: DeviceCatalogue, model: ModelSpec, training: TrainingSpec,
                                layouts: [String: GroupLayout], sync: SiteSync = .everyStep) throws -> Plan {
        _ = try resources(cluster: cluster, catalogue: catalogue, model: model, training: training)
        let used = cluster.sites.filter { layouts[$0.name] != nil }
        for name in layouts.keys.sorted() where !cluster.sites.contains(where: { $0.name == name }) {
            throw PlannerError(field: "layouts", reason: "no site named '\(name)'; sites: \(cluster.sites.map(\.name).joined(separator: ", "))")
        }
        guard !used.isEmpty else { throw PlannerError(field: "layouts", reason: "give a layout for at least one site") }
        let sites = try used.map { try SiteResources(site: $0, catalogue: catalogue) }
        let shares = split(training.globalBatchSequences, by: used.map { Double(layouts[$0.name]!.dataParallel) })
        var plans: [SitePlan] = []
        for (i, site) in sites.enumerated() {
            let layout = layouts[site.name]!
            guard layout.devices <= site.count else {
                throw PlannerError(field: "layouts.\(site.name)", reason: "uses \(layout.devices) devices, the site has \(site.count)")
            }
            var share = training
            share.globalBatchSequences = shares[i]
            let cost = CostModel.evaluate(model: model, training: share, site: site, layout: layout)
            let capacity = site.device.memoryGB * 1e9 * usableMemory
            plans.append(SitePlan(site: site.name, device: site.device.name, devicesUsed: layout.devices, devicesAvailable: site.count,
                                  layout: layout, cost: cost, sequencesPerStep: shares[i], fits: cost.memoryBytes <= capacity,
                                  memoryCapacityGB: capacity / 1e9))
        }
        return assemble(cluster: cluster, sites: sites, plans: plans, model: model, training: training, sync: sync)
    }

    /// What a layout the user gives predicts: `evaluate` with each site's micro-batch, when not
    /// given, the fastest that fits its share of the batch. A single layout without a site name
    /// applies to a cluster of one site.
    public static func evaluate(cluster: ClusterSpec, catalogue: DeviceCatalogue, model: ModelSpec, training: TrainingSpec,
                                given: [GivenLayout], sync: SiteSync = .everyStep) throws -> Plan {
        var named: [String: GivenLayout] = [:]
        for g in given {
            guard let name = g.site ?? (cluster.sites.count == 1 ? cluster.sites[0].name : nil) else {
                throw PlannerError(field: "layout", reason: "the cluster has \(cluster.sites.count) sites: name the site of each layout "
                                   + "(SITE=tp..,pp..,dp..; sites: \(cluster.sites.map(\.name).joined(separator: ", ")))")
            }
            guard named.updateValue(g, forKey: name) == nil else { throw PlannerError(field: "layout", reason: "two layouts for site '\(name)'") }
        }
        let sites = try resources(cluster: cluster, catalogue: catalogue, model: model, training: training)
        let order = cluster.sites.filter { named[$0.name] != nil }
        for name in named.keys.sorted() where !order.contains(where: { $0.name == name }) {
            throw PlannerError(field: "layout", reason: "no site named '\(name)'; sites: \(cluster.sites.map(\.name).joined(separator: ", "))")
        }
        let shares = split(training.globalBatchSequences, by: order.map { Double(named[$0.name]!.dataParallel) })
        var layouts: [String: GroupLayout] = [:]
        for (site, share) in zip(order, shares) {
            let g = named[site.name]!
            guard model.heads % g.tensorParallel == 0 else {
                throw PlannerError(field: "layout", reason: "tp\(g.tensorParallel) does not divide the model's \(model.heads) heads")
            }
            guard g.pipelineStages <= model.layers else {
                throw PlannerError(field: "layout", reason: "pp\(g.pipelineStages) is more stages than the model's \(model.layers) layers")
            }
            var part = training
            part.globalBatchSequences = share
            let resources = sites.first { $0.name == site.name }!
            // What the user left open: the fastest micro-batch and recomputation that fit.
            layouts[site.name] = completed(g, model: model, training: part, site: resources)
        }
        return try evaluate(cluster: cluster, catalogue: catalogue, model: model, training: training, layouts: layouts, sync: sync)
    }

    /// The sites' resources after checking the inputs (and that the devices have a rate at the
    /// run's precision).
    static func resources(cluster: ClusterSpec, catalogue: DeviceCatalogue, model: ModelSpec, training: TrainingSpec) throws -> [SiteResources] {
        try cluster.check()
        try model.validate()
        guard training.globalBatchSequences >= 1 else {
            throw PlannerError(field: "training.globalBatchSequences", reason: "must be at least 1")
        }
        let sites = try cluster.sites.enumerated().map { i, site in
            do { return try SiteResources(site: site, catalogue: catalogue) } catch let error as PlannerError {
                throw PlannerError(field: "sites.\(i).device", reason: error.reason, location: error.location)
            }
        }
        for s in sites where s.device.peakFLOPS(training.precision) <= 0 {
            throw PlannerError(field: "precision", reason: "the catalogue has no \(training.precision.rawValue) rate for \(s.device.name) "
                               + "(site \(s.name)); give its fp32TFLOPS in a device file (--devices) or plan in bf16")
        }
        return sites
    }

    /// Splits `total` into integer shares proportional to `weights` (largest remainders), each at least 1.
    static func split(_ total: Int, by weights: [Double]) -> [Int] {
        largestRemainderShares(of: total, weights: weights, minimum: 1) ?? weights.map { _ in max(1, total / max(weights.count, 1)) }
    }
}
