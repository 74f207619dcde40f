import Foundation

/// A layout a user asks about rather than one the planner chooses:
/// `[SITE=]tp8,pp4,dp32[,mb2][,recompute|norecompute][,zero1|zero2|zero3|fsdp][,tpoverlap]`. Without `mb`
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

    public static let grammar = "[SITE=]tp<n>,pp<n>,dp<n>[,mb<n>][,recompute|norecompute][,zero1|zero2|zero3|fsdp][,tpoverlap]"

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
                    tensorParallelOverlap: tensorParallelOverlap)
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
