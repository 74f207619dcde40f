import Foundation

/// One stage of a pipeline that crosses sites: where it runs, the layers it holds and what one
/// micro-batch costs it.
public struct SpanningStage: Codable, Sendable, Equatable {
    public var site: String
    public var device: String
    /// Devices of the stage in each replica: its tensor-parallel degree inside one node.
    public var tensorParallel: Int
    public var layers: Int
    /// Forward and backward (and recomputation) of one micro-batch, the LM head included on the last stage.
    public var computeSeconds: Double
    /// Transmission of one micro-batch's activations to the next stage (the stage is busy) and
    /// the hop's latency; the gradients come back the same way.
    public var sendToNextSeconds: Double
    public var latencyToNext: Double
    /// Per micro-batch: compute, both transmissions and both hops' latency (as in `CostModel`).
    public var stageSeconds: Double
    public var memoryBytes: Double
    public var capacityBytes: Double

    public var fits: Bool { memoryBytes <= capacityBytes }
}

/// Replicas of one pipeline that runs through several sites, as DT-FM and Metis place work on
/// mixed clusters: every used site gives each replica the same number of stages (each replica's
/// stages at a site sit on different devices, the replicas of a stage all at that site, in one
/// node where they fit, so that their gradient all-reduce stays on the site's network), layers are split across stages by
/// each device's speed within its memory, and the order of the sites along the pipeline is
/// chosen for the links its activations cross every micro-batch. A stage may be tensor parallel
/// across devices of one node (up to a degree the search tries for every site at once; a site
/// whose nodes are smaller uses its largest degree); the optimizer state of a stage is sharded
/// across its replicas (ZeRO-1), which costs no extra traffic in this model.
public struct SpanningPipeline: Codable, Sendable, Equatable {
    public var replicas: Int
    public var microBatch: Int
    public var recompute: Bool
    /// Sites along the pipeline, first stage first.
    public var order: [String]
    public var stages: [SpanningStage]
    public var microBatches: Int
    /// (micro-batches + stages − 1) × the slowest stage.
    public var pipelineSeconds: Double
    /// Exposed part of the slowest stage's gradient all-reduce among the replicas.
    public var dataParallelSeconds: Double
    public var optimizerSeconds: Double
    public var stepSeconds: Double
    /// Bytes that cross between sites per step, all replicas together.
    public var crossSiteBytesPerStep: Double
    public var fits: Bool { stages.allSatisfy(\.fits) }
    public var slowestStage: Double { stages.map(\.stageSeconds).max() ?? 0 }
}

extension Planner {
    /// The best pipeline through the sites of `cluster` (nil with one site): what `plan` weighs
    /// against a group per site.
    public static func pipelineAcrossSites(cluster: ClusterSpec, catalogue: DeviceCatalogue, model: ModelSpec,
                                           training: TrainingSpec) throws -> SpanningPipeline? {
        let sites = try resources(cluster: cluster, catalogue: catalogue, model: model, training: training)
        var evaluated = 0
        return bestSpanningPipeline(model: model, training: training, sites: sites, cluster: cluster, evaluated: &evaluated)
    }

    /// The fastest pipeline across `sites` (or, when none fits, the one nearest to fitting), over
    /// replica counts, site orders, micro-batches and recomputation; nil with fewer than two sites.
    static func bestSpanningPipeline(model: ModelSpec, training: TrainingSpec, sites: [SiteResources], cluster: ClusterSpec,
                                     evaluated: inout Int) -> SpanningPipeline? {
        guard sites.count > 1 else { return nil }
        var replicaOptions: Set<Int> = []
        var r = 1
        while r <= sites.map(\.count).max()! { replicaOptions.insert(r); r *= 2 }
        for s in sites { for k in 1...8 where s.count % k == 0 { replicaOptions.insert(s.count / k) } }
        var best: SpanningPipeline?
        var closest: SpanningPipeline?
        let orders = siteOrders(sites: sites, cluster: cluster)
        // Tensor-parallel degrees per site for each limit: the largest the site's nodes allow.
        var degreeSets: [[Int]] = []
        for limit in [1, 2, 4, 8] {
            let degrees = sites.map { site in tensorParallelOptions(site.devicesPerNode).filter { $0 <= limit && model.heads % $0 == 0 }.max() ?? 1 }
            if !degreeSets.contains(degrees) { degreeSets.append(degrees) }
        }
        for replicas in replicaOptions.sorted() where replicas <= training.globalBatchSequences {
            // Every site gives each replica as many stages as it has devices for; a site with
            // fewer devices than a replica's stage needs stays out.
            for degrees in degreeSets {
            for order in orders {
                let used = order.filter { sites[$0].count >= replicas * degrees[$0] }
                guard used.count > 1 else { continue }
                let stagesPerSite = used.map { sites[$0].count / (replicas * degrees[$0]) }
                guard stagesPerSite.reduce(0, +) <= model.layers else { continue }
                for recompute in [false, true] {
                    for b in microBatches where b <= max(1, training.globalBatchSequences / replicas) {
                        guard let p = spanningPipeline(model: model, training: training, sites: used.map { sites[$0] },
                                                       tensorParallel: used.map { degrees[$0] }, stagesPerSite: stagesPerSite,
                                                       replicas: replicas, microBatch: b, recompute: recompute, cluster: cluster) else { continue }
                        evaluated += 1
                        if p.fits {
                            if best == nil || p.stepSeconds < best!.stepSeconds * (1 - 1e-12) { best = p }
                        } else if closest == nil || overflow(p) < overflow(closest!) {
                            closest = p
                        }
                    }
                }
            }
            }
        }
        return best ?? closest
    }

    /// How far the fullest stage is over its memory, as a fraction of its capacity.
    static func overflow(_ p: SpanningPipeline) -> Double {
        p.stages.map { $0.memoryBytes / $0.capacityBytes }.max() ?? .infinity
    }

    /// Orders of sites along a pipeline, leaving out sites that would only slow it: every order
    /// of every subset of two or more sites for up to 5 sites; beyond that, from each site the
    /// widest-next-link order and each of its beginnings (the sites reached last sit behind
    /// the narrowest links).
    static func siteOrders(sites: [SiteResources], cluster: ClusterSpec) -> [[Int]] {
        let k = sites.count
        if k <= 5 {
            var all: [[Int]] = []
            for mask in 1..<(1 << k) where mask.nonzeroBitCount >= 2 {
                var order = (0..<k).filter { mask & (1 << $0) != 0 }
                repeat { all.append(order) } while CrossSiteRing.nextPermutation(&order)
            }
            return all
        }
        return (0..<k).flatMap { start in
            let order = CrossSiteRing.widestNextOrder(from: start, count: k) { cluster.link(sites[$0].name, sites[$1].name) }
            return (2...k).map { Array(order.prefix($0)) }
        }
    }

    /// One pipeline layout through `sites` in order, each giving `stagesPerSite` stages of
    /// `tensorParallel` devices to each of `replicas` replicas, layers split to minimise the
    /// slowest stage within each device's memory. Nil when a stage cannot hold even one layer at any split.
    static func spanningPipeline(model: ModelSpec, training: TrainingSpec, sites: [SiteResources], tensorParallel: [Int], stagesPerSite: [Int],
                                 replicas: Int, microBatch: Int, recompute: Bool, cluster: ClusterSpec,
                                 layerSplit: [Int]? = nil, dataParallelOverlapped: Bool = true) -> SpanningPipeline? {
        let h = Double(model.hidden), v = Double(model.vocabulary)
        let tokens = Double(microBatch * model.sequenceLength)
        let siteOf = zip(sites.indices, stagesPerSite).flatMap { Array(repeating: $0.0, count: $0.1) }
        let p = siteOf.count
        let m = max(1, Int((Double(training.globalBatchSequences) / Double(replicas) / Double(microBatch)).rounded(.up)))
        let perDevice = cluster.links?.perDevice ?? false
        let boundaryBytes = tokens * h * training.weightBytes
        // The link after stage i: the site's own network, or the link to the next site (shared
        // by every replica unless links are per device). A tensor-parallel stage's ranks each
        // send their share of the activations (sequence parallelism) on their own NIC or path.
        func hop(_ i: Int) -> (seconds: Double, latency: Double) {
            let (a, b) = (sites[siteOf[i]], sites[siteOf[i + 1]])
            let paths = Double(min(tensorParallel[siteOf[i]], tensorParallel[siteOf[i + 1]]))
            if siteOf[i] == siteOf[i + 1] { return (boundaryBytes / (paths * a.nicBytesPerSecond * CostModel.linkEfficiency), a.latency) }
            let link = cluster.link(a.name, b.name)
            let bandwidth = link.bytesPerSecond * cluster.linkEfficiency * (perDevice ? paths : 1 / Double(replicas))
            return (boundaryBytes / bandwidth, link.latency)
        }
        let hops = (0..<max(0, p - 1)).map(hop)
        let stateBytesPerParameter = training.weightBytes + training.gradientBytes
            + training.optimizerBytesPerParameter / Double(replicas)
        let perLayerParameters = model.parametersPerLayer
        // Per stage: seconds per layer, fixed seconds, bytes per layer, fixed bytes, capacity.
        var perLayerSeconds: [Double] = [], fixedSeconds: [Double] = [], perLayerBytes: [Double] = [], fixedBytes: [Double] = []
        var capacity: [Double] = [], maxLayers: [Int] = []
        for i in 0..<p {
            let site = sites[siteOf[i]], d = site.device
            let t = tensorParallel[siteOf[i]], td = Double(t)
            let block = CostModel.blockSeconds(model: model, training: training, device: d, tokens: tokens, t: td, recompute: recompute)
            let collectives = CostModel.tensorParallelCollectives(model: model, training: training, site: site, tokens: tokens, t: t,
                                                                  recompute: recompute)
            perLayerSeconds.append(block.compute + block.memoryBound + collectives.seconds)
            var fixed = 0.0
            if i > 0 { fixed += hops[i - 1].seconds + hops[i - 1].latency }
            if i < p - 1 { fixed += hops[i].seconds + hops[i].latency }
            if i == p - 1 {
                fixed += CostModel.headSeconds(model: model, training: training, device: d, tokens: tokens, t: td)
                    + CostModel.lossSeconds(model: model, device: d, tokens: tokens, t: td)
            }
            fixedSeconds.append(fixed)
            let activations = CostModel.activationBytes(model: model, training: training, device: d, tokens: tokens, t: td, recompute: recompute)
            let inFlight = Double(min(p - i, m))
            perLayerBytes.append(perLayerParameters / td * stateBytesPerParameter + inFlight * activations.kept)
            var extra = recompute ? activations.full : 0
            if i == 0 { extra += model.inputEmbeddingParameters / td * stateBytesPerParameter }
            if i == p - 1 && i > 0 { extra += v * h / td * stateBytesPerParameter }
            fixedBytes.append(extra)
            let cap = d.memoryGB * 1e9 * usableMemory
            capacity.append(cap)
            maxLayers.append(Int(((cap - extra) / perLayerBytes[i]).rounded(.down)))
        }
        // Layers by speed within memory: the smallest T at which stages holding at most
        // (T − fixed)/perLayer layers (and what fits) hold them all. A stage that cannot hold
        // one layer gets one anyway and the plan reports it as not fitting.
        func layers(within t: Double) -> [Int] {
            (0..<p).map { i in max(1, min(max(1, maxLayers[i]), Int(((t - fixedSeconds[i]) / perLayerSeconds[i]).rounded(.down)))) }
        }
        let memoryBound = (0..<p).reduce(0) { $0 + max(1, maxLayers[$1]) }
        let target = min(model.layers, memoryBound)
        var lo = 0.0
        var hi = (0..<p).map { fixedSeconds[$0] + Double(model.layers) * perLayerSeconds[$0] }.max()!
        for _ in 0..<60 where hi - lo > 1e-9 * hi {
            let mid = (lo + hi) / 2
            if layers(within: mid).reduce(0, +) >= target { hi = mid } else { lo = mid }
        }
        // A split the user gives is taken as it is (checked by the caller).
        var split = layerSplit ?? layers(within: hi)
        func seconds(_ i: Int) -> Double { fixedSeconds[i] + Double(split[i]) * perLayerSeconds[i] }
        func fullness(_ i: Int) -> Double { Double(split[i]) / Double(max(1, maxLayers[i])) }
        // Trim to the model's layers from the slowest stages, or (when memory runs out) put the
        // rest on the stages with the most room, so every layer sits on exactly one stage.
        while split.reduce(0, +) > model.layers {
            let i = (0..<p).filter { split[$0] > 1 }.max { seconds($0) < seconds($1) }!
            split[i] -= 1
        }
        while split.reduce(0, +) < model.layers {
            let i = (0..<p).min { fullness($0) < fullness($1) }!
            split[i] += 1
        }
        /// Parameters each device of stage i holds.
        func parameters(_ i: Int) -> Double {
            (Double(split[i]) * perLayerParameters + (i == 0 ? model.inputEmbeddingParameters : 0) + (i == p - 1 && i > 0 ? v * h : 0))
                / Double(tensorParallel[siteOf[i]])
        }
        var stages: [SpanningStage] = []
        for i in 0..<p {
            let site = sites[siteOf[i]]
            let links = (i > 0 ? hops[i - 1].seconds + hops[i - 1].latency : 0) + (i < p - 1 ? hops[i].seconds + hops[i].latency : 0)
            stages.append(SpanningStage(site: site.name, device: site.device.name, tensorParallel: tensorParallel[siteOf[i]], layers: split[i],
                                        computeSeconds: fixedSeconds[i] - links + Double(split[i]) * perLayerSeconds[i],
                                        sendToNextSeconds: i < p - 1 ? hops[i].seconds : 0, latencyToNext: i < p - 1 ? hops[i].latency : 0,
                                        stageSeconds: fixedSeconds[i] + Double(split[i]) * perLayerSeconds[i],
                                        memoryBytes: fixedBytes[i] + Double(split[i]) * perLayerBytes[i], capacityBytes: capacity[i]))
        }
        let slowest = stages.map(\.stageSeconds).max()!
        let pipeline = Double(m + p - 1) * slowest
        // The replicas of each stage all-reduce its gradients over their site's network.
        var dataParallel = 0.0, optimizer = 0.0, hidden = 0.0
        for i in 0..<p {
            let site = sites[siteOf[i]]
            if replicas > 1 {
                let r = Double(replicas), t = tensorParallel[siteOf[i]]
                let bytes = 2 * (r - 1) / r * parameters(i) * training.gradientBytes
                // A stage's replicas share a node where they fit (its stages then sit on other nodes).
                let bandwidth = CostModel.dataParallelBandwidth(site: site, replicas: replicas, tensorParallel: t,
                                                                inOneNode: replicas * t <= site.devicesPerNode)
                let full = bytes / bandwidth + 2 * (r - 1) * site.latency
                let exposed = full * (dataParallelOverlapped ? 1 - CostModel.dataParallelOverlap : 1)
                if exposed > dataParallel { (dataParallel, hidden) = (exposed, full - exposed) }
            }
            let state = 2 * parameters(i) * (training.weightBytes + training.gradientBytes + training.optimizerBytesPerParameter)
            optimizer = max(optimizer, state / (site.device.memoryBandwidthTBs * 1e12))
        }
        // The first and the last stage all-reduce a tied embedding's gradient over the slower of
        // their networks, or the link between their sites (shared by the replicas unless per device).
        let (first, last) = (sites[siteOf[0]], sites[siteOf[p - 1]])
        let paths = Double(min(tensorParallel[siteOf[0]], tensorParallel[siteOf[p - 1]]))
        var tiedBandwidth = min(first.nicBytesPerSecond, last.nicBytesPerSecond) * paths * CostModel.linkEfficiency
        var tiedLatency = max(first.latency, last.latency)
        if siteOf[0] != siteOf[p - 1] {
            let link = cluster.link(first.name, last.name)
            tiedBandwidth = min(tiedBandwidth, link.bytesPerSecond * cluster.linkEfficiency * (perDevice ? paths : 1 / Double(replicas)))
            tiedLatency = link.latency
        }
        let tied = CostModel.tiedEmbeddingAllReduce(model: model, training: training, stages: p, t: paths, bytesPerSecond: tiedBandwidth,
                                                    latency: tiedLatency)
        dataParallel += tied.seconds
        // Hidden all-reduces slow the compute they overlap.
        let contention = CostModel.contention(hidden: hidden, compute: Double(m) * slowest)
        let crossings = (0..<max(0, p - 1)).filter { siteOf[$0] != siteOf[$0 + 1] }.count
        return SpanningPipeline(replicas: replicas, microBatch: microBatch, recompute: recompute, order: sites.map(\.name), stages: stages,
                                microBatches: m, pipelineSeconds: pipeline, dataParallelSeconds: dataParallel, optimizerSeconds: optimizer,
                                stepSeconds: pipeline + dataParallel + contention + optimizer,
                                crossSiteBytesPerStep: 2 * boundaryBytes * Double(m * replicas * crossings))
    }
}
