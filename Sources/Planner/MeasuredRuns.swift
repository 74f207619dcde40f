import Basics
import Foundation

/// How a source counts the FLOPs behind a "TFLOP/s per device" figure.
public enum FLOPCounting: String, Codable, Sendable {
    /// Three passes, attention (not halved for causal masks) and the LM head: Megatron-LM's MFU count.
    case megatron
    /// Megatron-LM's Eq. 3: four passes (full recomputation), attention and the LM head.
    case megatronRecompute = "megatron-recompute"
    /// 6·N + 12·L·h·s with N all parameters: FlashAttention-2, torchtitan, MosaicML's MFU.
    case sixNAttention = "6n-attention"

    /// FLOPs per token this convention counts for `model`.
    public func flopsPerToken(_ model: ModelSpec) -> Double {
        switch self {
        case .megatron: model.trainingFLOPsPerToken
        case .megatronRecompute: model.recomputeFLOPsPerToken
        case .sixNAttention: 6 * model.parameters + 12 * Double(model.layers * model.hidden * model.sequenceLength)
        }
    }
}

/// A measured training run: what was trained, on what, laid out how, and how fast it went, as
/// its source reports it.
public struct MeasuredRun: Codable, Sendable {
    public struct Reported: Codable, Sendable {
        public var stepSeconds: Double?
        public var tokensPerSecondPerDevice: Double?
        public var tflopsPerDevice: Double?
        public var counting: FLOPCounting?

        enum CodingKeys: String, CodingKey, CaseIterable { case stepSeconds, tokensPerSecondPerDevice, tflopsPerDevice, counting }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownPlannerKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            stepSeconds = try c.decodeIfPresent(Double.self, forKey: .stepSeconds)
            tokensPerSecondPerDevice = try c.decodeIfPresent(Double.self, forKey: .tokensPerSecondPerDevice)
            tflopsPerDevice = try c.decodeIfPresent(Double.self, forKey: .tflopsPerDevice)
            counting = try c.decodeIfPresent(FLOPCounting.self, forKey: .counting)
            let given = [stepSeconds, tokensPerSecondPerDevice, tflopsPerDevice].compactMap { $0 }
            guard given.count == 1, given[0] > 0, given[0].isFinite else {
                throw PlannerError(field: "reported", reason: "give exactly one positive figure: stepSeconds, tokensPerSecondPerDevice or tflopsPerDevice")
            }
            guard (tflopsPerDevice == nil) == (counting == nil) else {
                throw PlannerError(field: "reported.counting", reason: "tflopsPerDevice needs its counting (megatron, megatron-recompute, 6n-attention), and only it")
            }
        }
    }

    public var id: String
    public var source: String
    public var model: String
    public var sequence: Int?
    public var batch: Int
    public var precision: Precision?
    public var attention: AttentionKernel?
    /// Bytes per gradient value the run all-reduces, when not its precision's (fp32 all-reduce of fp16 training: 4).
    public var gradientBytes: Double?
    public var sites: [SiteSpec]
    public var links: InterSiteLinks?
    /// A layout per site (`plan --layout`), or one pipeline through the sites (`plan --pipeline`).
    public var layout: [String]
    public var pipeline: String?
    public var reported: Reported

    enum CodingKeys: String, CodingKey, CaseIterable { case id, source, model, sequence, batch, precision, attention, gradientBytes, sites, links, layout, pipeline, reported }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownPlannerKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        source = try c.decode(String.self, forKey: .source)
        model = try c.decode(String.self, forKey: .model)
        sequence = try c.decodeIfPresent(Int.self, forKey: .sequence)
        batch = try c.decode(Int.self, forKey: .batch)
        precision = try c.decodeIfPresent(Precision.self, forKey: .precision)
        attention = try c.decodeIfPresent(AttentionKernel.self, forKey: .attention)
        gradientBytes = try c.decodeIfPresent(Double.self, forKey: .gradientBytes)
        if let g = gradientBytes, ![1, 2, 4].contains(g) { throw PlannerError(field: "gradientBytes", reason: "must be 1, 2 or 4, got \(g)") }
        sites = try c.decode([SiteSpec].self, forKey: .sites)
        links = try c.decodeIfPresent(InterSiteLinks.self, forKey: .links)
        layout = try c.decodeIfPresent([String].self, forKey: .layout) ?? []
        pipeline = try c.decodeIfPresent(String.self, forKey: .pipeline)
        guard layout.isEmpty != (pipeline == nil) else {
            throw PlannerError(field: "layout", reason: "give a layout per site (layout) or one pipeline through the sites (pipeline), one of them")
        }
        reported = try c.decode(Reported.self, forKey: .reported)
    }

    /// The planner's prediction for this run and the reported figure, both as tokens/s per device.
    public func check(catalogue: DeviceCatalogue) throws -> MeasuredRunCheck {
        var m = try ModelSpec.named(model)
        if let sequence { m.sequenceLength = sequence }
        var training = TrainingSpec(globalBatchSequences: batch)
        if let precision { training.use(precision) }
        training.attention = attention ?? .auto
        if let gradientBytes { training.gradientBytes = gradientBytes }
        let cluster = ClusterSpec(name: id, sites: sites, links: links)
        let plan = try pipeline.map { try Planner.evaluate(cluster: cluster, catalogue: catalogue, model: m, training: training,
                                                             pipeline: try GivenPipeline(parsing: $0)) }
            ?? Planner.evaluate(cluster: cluster, catalogue: catalogue, model: m, training: training, given: try layout.map { try GivenLayout(parsing: $0) })
        let devices = Double(plan.throughput.devices)
        let reportedRate: Double
        if let s = reported.stepSeconds {
            reportedRate = Double(batch * m.sequenceLength) / s / devices
        } else if let t = reported.tokensPerSecondPerDevice {
            reportedRate = t
        } else {
            reportedRate = reported.tflopsPerDevice! * 1e12 / reported.counting!.flopsPerToken(m)
        }
        return MeasuredRunCheck(id: id, source: source, plan: plan, predictedTokensPerSecondPerDevice: plan.throughput.tokensPerSecondPerDevice,
                                reportedTokensPerSecondPerDevice: reportedRate)
    }
}

/// One run's prediction against its measurement.
public struct MeasuredRunCheck: Codable, Sendable {
    public var id: String
    public var source: String
    public var plan: Plan
    public var predictedTokensPerSecondPerDevice: Double
    public var reportedTokensPerSecondPerDevice: Double

    public init(id: String, source: String, plan: Plan, predictedTokensPerSecondPerDevice: Double, reportedTokensPerSecondPerDevice: Double) {
        self.id = id
        self.source = source
        self.plan = plan
        self.predictedTokensPerSecondPerDevice = predictedTokensPerSecondPerDevice
        self.reportedTokensPerSecondPerDevice = reportedTokensPerSecondPerDevice
    }

    /// predicted / reported − 1 (positive: predicted faster than measured).
    public var error: Double { predictedTokensPerSecondPerDevice / reportedTokensPerSecondPerDevice - 1 }
}

/// A file of measured runs (`runs:` and one entry per run).
public struct MeasuredRuns: Sendable {
    public var runs: [MeasuredRun]

    public init(yaml text: String, source: String) throws {
        runs = try decodePlannerList(MeasuredRun.self, key: "runs", from: text, source: source)
        guard !runs.isEmpty, runs.count <= 10_000 else { throw PlannerError(field: "runs", reason: "give 1 to 10000 runs, got \(runs.count)", location: source) }
    }

    /// Every run checked, in order; an error names the run.
    public func check(catalogue: DeviceCatalogue) throws -> [MeasuredRunCheck] {
        try runs.map { run in
            do { return try run.check(catalogue: catalogue) } catch let error as PlannerError {
                throw PlannerError(field: error.field, reason: "run \(run.id): \(error.reason)", location: error.location)
            }
        }
    }
}

/// The share of checks within `bound` (relative error) and the median absolute error.
public func measuredRunSummary(_ checks: [MeasuredRunCheck], bound: Double = 0.25) -> (withinBound: Double, medianError: Double) {
    let errors = checks.map { abs($0.error) }
    guard !errors.isEmpty else { return (0, 0) }
    return (Double(errors.filter { $0 <= bound }.count) / Double(errors.count), median(errors))
}
