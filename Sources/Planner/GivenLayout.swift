import Foundation

/// A layout a user asks about rather than one the planner chooses:
/// `[SITE=]tp8,pp4,dp32[,mb2][,recompute|norecompute][,zero1|zero2|zero3|fsdp][,tpoverlap][,dpafter]`
/// (`dpafter`: the gradient all-reduce only after the last backward, as DeepSpeed's pipeline engine). Without `mb`
/// the planner picks the fastest micro-batch that fits; without either recompute word, whether
/// to recompute activations the same way.
public struct GivenLayout: Sendable, Equatable {
    /// The site it applies to; nil when the cluster has one site.
    public var site: String?
    public var tensorParallel = 1
    public var pipelineStages = 1
    public var dataParallel = 1
    public var microBatch: Int?
    public var recompute: Bool?
    public var zeroStage = 0
    public var tensorParallelOverlap = false
    public var dataParallelOverlapped = true

    public static let grammar = "[SITE=]tp<n>,pp<n>,dp<n>[,mb<n>][,recompute|norecompute][,zero1|zero2|zero3|fsdp][,tpoverlap][,dpafter]"

    public init(site: String? = nil, tensorParallel: Int = 1, pipelineStages: Int = 1, dataParallel: Int = 1, microBatch: Int? = nil,
                recompute: Bool? = nil, zeroStage: Int = 0, tensorParallelOverlap: Bool = false) {
        self.site = site
        self.tensorParallelOverlap = tensorParallelOverlap
        self.tensorParallel = tensorParallel
        self.pipelineStages = pipelineStages
        self.dataParallel = dataParallel
        self.microBatch = microBatch
        self.recompute = recompute
        self.zeroStage = zeroStage
    }

    /// Parses one `--layout` value; every part is checked, none ignored.
    public init(parsing text: String) throws {
        var body = Substring(text)
        if let equals = text.firstIndex(of: "=") {
            site = String(text[..<equals])
            body = text[text.index(after: equals)...]
            guard !site!.isEmpty else { throw PlannerError(field: "layout", reason: "'\(text)' names no site before '='; \(Self.grammar)") }
        }
        var seen: Set<String> = []
        for raw in body.split(separator: ",", omittingEmptySubsequences: false) {
            let part = raw.trimmingCharacters(in: .whitespaces).lowercased()
            let key = String(part.prefix { $0.isLetter })
            guard seen.insert(key == "fsdp" ? "zero" : key == "norecompute" ? "recompute" : key).inserted else {
                throw PlannerError(field: "layout", reason: "'\(key)' appears twice in '\(text)'")
            }
            let number = Int(part.dropFirst(key.count))
            switch (key, number) {
            case ("tp", let n?) where n >= 1: tensorParallel = n
            case ("pp", let n?) where n >= 1: pipelineStages = n
            case ("dp", let n?) where n >= 1: dataParallel = n
            case ("mb", let n?) where n >= 1: microBatch = n
            case ("recompute", nil) where part == "recompute": recompute = true
            case ("norecompute", nil) where part == "norecompute": recompute = false
            case ("zero", let n?) where (0...3).contains(n): zeroStage = n
            case ("fsdp", nil) where part == "fsdp": zeroStage = 3
            case ("tpoverlap", nil) where part == "tpoverlap": tensorParallelOverlap = true
            case ("dpafter", nil) where part == "dpafter": dataParallelOverlapped = false
            default:
                throw PlannerError(field: "layout", reason: "'\(part)' in '\(text)' is not a layout part; \(Self.grammar), "
                                   + "counts at least 1, ZeRO stages 0–3")
            }
        }
        let devices = tensorParallel.multipliedReportingOverflow(by: pipelineStages)
        guard !devices.overflow, !devices.partialValue.multipliedReportingOverflow(by: dataParallel).overflow else {
            throw PlannerError(field: "layout", reason: "'\(text)' asks for more devices than any cluster has")
        }
    }

    public var devices: Int { tensorParallel * pipelineStages * dataParallel }

    /// The layout with the micro-batch and recomputation given, or else `b` and `r`.
    func layout(microBatch b: Int, recompute r: Bool) -> GroupLayout {
        GroupLayout(tensorParallel: tensorParallel, pipelineStages: pipelineStages, dataParallel: dataParallel,
                    microBatch: microBatch ?? b, recompute: recompute ?? r, zeroStage: dataParallel > 1 ? zeroStage : 0,
                    tensorParallelOverlap: tensorParallelOverlap, dataParallelOverlapped: dataParallelOverlapped)
    }
}

/// How sites may sync: as the planner finds best, every step only, or DiLoCo only (any
/// interval it tries, or the one given).
public enum SyncChoice: Sendable, Equatable {
    case auto, everyStep, diloco(interval: Int?)

    /// `auto`, `every-step`, `diloco` or `diloco:H`.
    public init(parsing text: String) throws {
        let lower = text.lowercased()
        switch lower {
        case "auto": self = .auto
        case "every-step", "everystep", "sync", "ddp": self = .everyStep
        case "diloco": self = .diloco(interval: nil)
        default:
            guard lower.hasPrefix("diloco:"), let h = Int(lower.dropFirst(7)), h >= 2, h <= 100_000 else {
                throw PlannerError(field: "sync", reason: "'\(text)' is not a sync choice: auto, every-step, diloco or diloco:H (2 ≤ H ≤ 100000)")
            }
            self = .diloco(interval: h)
        }
    }

    /// The cross-site syncs this choice allows.
    public var options: [SiteSync] {
        switch self {
        case .auto: SiteSync.options
        case .everyStep: [.everyStep]
        case .diloco(nil): SiteSync.options.filter { $0.interval > 1 }
        case .diloco(let h?): [SiteSync.diloco(interval: h)]
        }
    }

    /// Whether a pipeline through several sites (which meets every step) may be chosen.
    var allowsSpanningPipeline: Bool {
        if case .diloco = self { return false }
        return true
    }
}

extension SiteSync {
    /// DiLoCo every `interval` steps: int8 below 100 steps, int4 from 100 on (as the options),
    /// with the token premium of the nearest option at or below the interval.
    public static func diloco(interval: Int) -> SiteSync {
        let below = options.last { $0.interval <= interval && $0.interval > 1 } ?? options[1]
        let codec = interval >= 100 ? options.first { $0.interval == 100 }! : options[1]
        return SiteSync(interval: interval, codec: codec.codec, bytesPerValue: codec.bytesPerValue, tokenPremium: below.tokenPremium)
    }
}

/// A pipeline through sites a user asks about: `SITE:STAGES[:tpN],… [replicas=R] [mb=B]
/// [recompute|norecompute] [layers=a,b,…]` — the sites in pipeline order with the stages each
/// gives a replica (and their tensor-parallel degree), the replicas, and optionally the
/// micro-batch, recomputation and the layers of every stage (else split by device speed).
public struct GivenPipeline: Sendable, Equatable {
    public var sites: [(name: String, stages: Int, tensorParallel: Int)]
    public var replicas = 1
    public var microBatch: Int?
    public var recompute: Bool?
    public var layers: [Int]?
    public var dataParallelOverlapped = true

    public static let grammar = "SITE:STAGES[:tpN],... [replicas=R] [mb=B] [recompute|norecompute] [layers=a,b,...] [dpafter]"

    public static func == (a: GivenPipeline, b: GivenPipeline) -> Bool {
        a.sites.map { "\($0.name):\($0.stages):\($0.tensorParallel)" } == b.sites.map { "\($0.name):\($0.stages):\($0.tensorParallel)" }
            && (a.replicas, a.microBatch, a.recompute) == (b.replicas, b.microBatch, b.recompute) && a.layers == b.layers
            && a.dataParallelOverlapped == b.dataParallelOverlapped
    }

    public init(parsing text: String) throws {
        func refuse(_ why: String) -> PlannerError {
            PlannerError(field: "pipeline", reason: "\(why) in '\(text)'; \(Self.grammar)")
        }
        let words = text.split(separator: " ").map(String.init)
        guard let first = words.first else { throw refuse("no sites") }
        sites = []
        for part in first.split(separator: ",", omittingEmptySubsequences: false) {
            let fields = part.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 2 || fields.count == 3, !fields[0].isEmpty, let stages = Int(fields[1]), (1...10_000).contains(stages) else {
                throw refuse("'\(part)' is not SITE:STAGES[:tpN]")
            }
            var tp = 1
            if fields.count == 3 {
                guard fields[2].hasPrefix("tp"), let t = Int(fields[2].dropFirst(2)), [1, 2, 4, 8, 16].contains(t) else {
                    throw refuse("'\(fields[2])' is not tp1, tp2, tp4, tp8 or tp16")
                }
                tp = t
            }
            guard !sites.contains(where: { $0.name == fields[0] }) else { throw refuse("site '\(fields[0])' twice") }
            sites.append((fields[0], stages, tp))
        }
        guard sites.count >= 2 else { throw refuse("a pipeline through sites needs two sites or more") }
        for word in words.dropFirst() {
            let pair = word.split(separator: "=", maxSplits: 1).map(String.init)
            switch (pair[0], pair.count == 2 ? pair[1] : nil) {
            case ("replicas", let v?): guard let r = Int(v), (1...100_000).contains(r) else { throw refuse("replicas=\(v)") }; replicas = r
            case ("mb", let v?): guard let b = Int(v), (1...4096).contains(b) else { throw refuse("mb=\(v)") }; microBatch = b
            case ("recompute", nil): recompute = true
            case ("norecompute", nil): recompute = false
            case ("dpafter", nil): dataParallelOverlapped = false
            case ("layers", let v?):
                let values = v.split(separator: ",").map { Int($0) }
                guard values.allSatisfy({ ($0 ?? 0) >= 1 }) else { throw refuse("layers=\(v)") }
                layers = values.map { $0! }
            default: throw refuse("'\(word)' is not a pipeline part")
            }
        }
        if let layers, layers.count != sites.reduce(0, { $0 + $1.stages }) {
            throw refuse("\(layers.count) layer counts for \(sites.reduce(0) { $0 + $1.stages }) stages")
        }
    }
}

extension Planner {
    /// What a given pipeline through sites predicts (the same model as the planner's own).
    public static func evaluate(cluster: ClusterSpec, catalogue: DeviceCatalogue, model: ModelSpec, training: TrainingSpec,
                                pipeline given: GivenPipeline) throws -> Plan {
        let all = try resources(cluster: cluster, catalogue: catalogue, model: model, training: training)
        var sites: [SiteResources] = []
        for g in given.sites {
            guard let site = all.first(where: { $0.name == g.name }) else {
                throw PlannerError(field: "pipeline", reason: "no site named '\(g.name)'; sites: \(all.map(\.name).joined(separator: ", "))")
            }
            guard g.stages * g.tensorParallel * given.replicas <= site.count else {
                throw PlannerError(field: "pipeline", reason: "\(g.name) gives \(given.replicas) replica(s) \(g.stages) stage(s) of "
                                   + "\(g.tensorParallel) device(s): \(g.stages * g.tensorParallel * given.replicas), it has \(site.count)")
            }
            guard model.heads % g.tensorParallel == 0, g.tensorParallel <= site.devicesPerNode else {
                throw PlannerError(field: "pipeline", reason: "tp\(g.tensorParallel) at \(g.name) must divide the \(model.heads) heads and fit its \(site.devicesPerNode)-device nodes")
            }
            sites.append(site)
        }
        let stages = given.sites.reduce(0) { $0 + $1.stages }
        guard stages <= model.layers else { throw PlannerError(field: "pipeline", reason: "\(stages) stages for \(model.layers) layers") }
        if let layers = given.layers, layers.reduce(0, +) != model.layers {
            throw PlannerError(field: "pipeline", reason: "layers add up to \(layers.reduce(0, +)), the model has \(model.layers)")
        }
        var best: SpanningPipeline?
        for b in given.microBatch.map({ [$0] }) ?? microBatches where b <= max(1, training.globalBatchSequences / given.replicas) || given.microBatch != nil {
            for r in given.recompute.map({ [$0] }) ?? [false, true] {
                guard let p = spanningPipeline(model: model, training: training, sites: sites, tensorParallel: given.sites.map(\.tensorParallel),
                                               stagesPerSite: given.sites.map(\.stages), replicas: given.replicas, microBatch: b, recompute: r,
                                               cluster: cluster, layerSplit: given.layers,
                                               dataParallelOverlapped: given.dataParallelOverlapped) else { continue }
                if best == nil || (p.fits && !best!.fits) || (p.fits == best!.fits && (p.fits ? p.stepSeconds < best!.stepSeconds : overflow(p) < overflow(best!))) {
                    best = p
                }
            }
        }
        guard let span = best else { throw PlannerError(field: "pipeline", reason: "no stage of this pipeline can hold a layer") }
        return makePlan(cluster: cluster, sites: all, model: model, training: training, sitePlans: [], sync: .everyStep,
                        ring: CrossSiteRing(order: [], bytesPerSync: span.crossSiteBytesPerStep, seconds: 0),
                        stepSeconds: span.stepSeconds, fits: span.fits, pipelineAcrossSites: span)
    }
}
