import Basics
import Foundation

/// Seconds one device took for one micro-batch's forward and backward, as a user measured them
/// on their own hardware and software: what calibrates the device's achievable fraction.
public struct DeviceMeasurement: Decodable, Sendable {
    public var device: String
    public var model: String
    public var sequence: Int?
    public var microBatch: Int
    /// Tensor-parallel degree of the measurement (the seconds are one rank's).
    public var tensorParallel: Int
    /// Blocks measured (all of the model's when absent; the LM head is counted only then).
    public var layers: Int?
    public var recompute: Bool
    public var attention: AttentionKernel?
    public var precision: Precision?
    public var seconds: Double

    enum CodingKeys: String, CodingKey, CaseIterable {
        case device, model, sequence, microBatch, tensorParallel, layers, recompute, attention, precision, seconds
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownPlannerKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        device = try c.decode(String.self, forKey: .device)
        model = try c.decode(String.self, forKey: .model)
        sequence = try c.decodeIfPresent(Int.self, forKey: .sequence)
        microBatch = try c.decode(Int.self, forKey: .microBatch)
        tensorParallel = try c.decodeIfPresent(Int.self, forKey: .tensorParallel) ?? 1
        layers = try c.decodeIfPresent(Int.self, forKey: .layers)
        recompute = try c.decodeIfPresent(Bool.self, forKey: .recompute) ?? false
        attention = try c.decodeIfPresent(AttentionKernel.self, forKey: .attention)
        precision = try c.decodeIfPresent(Precision.self, forKey: .precision)
        seconds = try c.decode(Double.self, forKey: .seconds)
        for (field, value) in [("microBatch", microBatch), ("tensorParallel", tensorParallel), ("layers", layers ?? 1)] where !(1...1_000_000).contains(value) {
            throw PlannerError(field: field, reason: "must be in 1...1000000, got \(value)")
        }
        guard seconds > 0, seconds.isFinite, seconds < 1e6 else { throw PlannerError(field: "seconds", reason: "must be a positive number of seconds, got \(seconds)") }
    }

    /// The achievable fraction this measurement implies for `device`: the seconds the cost model
    /// charges at the full peak for matrix products and attention, over what the measurement
    /// leaves for them after the memory-bound work and the tensor-parallel collectives.
    func impliedAchievable(device: DeviceSpec) throws -> Double {
        var m = try ModelSpec.named(model)
        if let sequence { m.sequenceLength = sequence }
        var ideal = device
        ideal.achievable = 1
        var training = TrainingSpec(globalBatchSequences: microBatch)
        if let precision { training.use(precision) }
        training.attention = attention ?? .auto
        guard ideal.peakFLOPS(training.precision) > 0 else {
            throw PlannerError(field: "precision", reason: "\(device.name) has no \(training.precision.rawValue) rate to calibrate")
        }
        let site = try SiteResources(site: SiteSpec(name: "profile", device: device.name, count: tensorParallel),
                                     catalogue: DeviceCatalogue(devices: [ideal]))
        let layout = GroupLayout(tensorParallel: tensorParallel, pipelineStages: 1, dataParallel: 1, microBatch: microBatch, recompute: recompute)
        let whole = CostModel.evaluate(model: m, training: training, site: site, layout: layout)
        // A measurement of some blocks only: scale the per-block parts, leave the LM head out.
        var blocks = m
        blocks.vocabulary = 1
        let perBlock = CostModel.evaluate(model: blocks, training: training, site: site, layout: layout)
        let share = Double(layers ?? m.layers) / Double(m.layers)
        let matrix = layers == nil ? whole.computeSeconds : perBlock.computeSeconds * share
        let part = layers == nil ? whole : perBlock
        let rest = (part.memoryBoundSeconds + part.tensorParallelSeconds) * (layers == nil ? 1 : share)
        guard seconds > rest else {
            throw PlannerError(field: "seconds", reason: String(format: "%.4g s for %@ is less than its memory-bound work and collectives alone (%.4g s): check the figure", seconds, model, rest))
        }
        let achievable = matrix / (seconds - rest)
        guard achievable <= 1 else {
            throw PlannerError(field: "seconds", reason: String(format: "%.4g s for %@ on %@ would beat the device's peak (%.0f%% of it): check the figure or the device's peak", seconds, model, device.name, 100 * achievable))
        }
        return achievable
    }
}

/// What a profile changed for one device.
public struct DeviceCalibration: Codable, Sendable {
    public var device: String
    public var measurements: Int
    public var achievableBefore: Double
    public var achievableAfter: Double
    /// Each measurement's implied fraction (the median is the one used).
    public var implied: [Double]
}

/// A file of measurements (`measurements:` and one entry each) that calibrates devices.
public struct DeviceProfile: Sendable {
    public var measurements: [DeviceMeasurement]

    public init(yaml text: String, source: String) throws {
        measurements = try decodePlannerList(DeviceMeasurement.self, key: "measurements", from: text, source: source)
        guard (1...10_000).contains(measurements.count) else {
            throw PlannerError(field: "measurements", reason: "give 1 to 10000 measurements, got \(measurements.count)", location: source)
        }
    }

    /// The catalogue with each measured device's achievable fraction set to the median its
    /// measurements imply, and what changed.
    public func calibrate(_ catalogue: DeviceCatalogue) throws -> (DeviceCatalogue, [DeviceCalibration]) {
        var implied: [String: [Double]] = [:]
        var order: [String] = []
        for (i, m) in measurements.enumerated() {
            do {
                let device = try catalogue.device(named: m.device)
                if implied[device.name] == nil { order.append(device.name) }
                implied[device.name, default: []].append(try m.impliedAchievable(device: device))
            } catch let error as PlannerError {
                throw PlannerError(field: "measurements.\(i).\(error.field)", reason: error.reason, location: error.location)
            }
        }
        var result = catalogue
        var changes: [DeviceCalibration] = []
        for name in order {
            var device = try catalogue.device(named: name)
            let middle = median(implied[name]!)
            changes.append(DeviceCalibration(device: name, measurements: implied[name]!.count, achievableBefore: device.achievable,
                                             achievableAfter: middle, implied: implied[name]!))
            device.achievable = middle
            device.confidence = "measured"
            result.merge(DeviceCatalogue(devices: [device]))
        }
        return (result, changes)
    }
}
