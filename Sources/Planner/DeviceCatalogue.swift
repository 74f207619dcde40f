import Foundation
import Basics
import Yams

/// One accelerator (or CPU) as the planner sees it.
public struct DeviceSpec: Codable, Sendable, Equatable {
    public var name: String
    public var aliases: [String] = []
    public var vendor: String = ""
    /// Dense BF16/FP16 tensor peak, TFLOPS.
    public var bf16TFLOPS: Double
    /// Vector FP32 peak, TFLOPS (0 when not published).
    public var fp32TFLOPS: Double = 0
    /// Fraction of the BF16 peak large matrix products reach (MAMF / peak).
    public var achievable: Double
    /// Matrix width at which this device's products run at half their sustained rate; nil
    /// takes `CostModel.narrowMatrixWidth` (tensor-core GPUs). CPUs barely slow down on narrow
    /// matrices: `bench engine` measures it.
    public var narrowMatrixWidth: Double?
    public var memoryGB: Double
    public var memoryBandwidthTBs: Double
    /// Scale-up bandwidth per device inside a node, GB/s in one direction (0: none).
    public var intraNodeGBs: Double
    public var devicesPerNode: Int
    /// Typical scale-out NIC per device, Gbit/s.
    public var nicGbps: Double
    /// Total processing performance (Oct-2023 US rule).
    public var tpp: Double = 0
    public var performanceDensity: Double?
    /// The 3A090 class the TPP and density imply, or `none`.
    public var exportClass: String = "none"
    /// How sure the figures are: P primary, S secondary, D derived, U uncertain.
    public var confidence: String = "U"
    /// Where the figures come from (source keys of ../shared/reference/devices.md, or a URL).
    public var source: String = ""
    /// Architecture generation (Volta, Turing, Ampere, Ada, Hopper, CDNA2, …).
    public var architecture: String = ""
    /// Whether trainers on this device use fused attention by default (FlashAttention-2 and
    /// PyTorch's flash kernel need Ampere or newer; `--attention` overrides).
    public var fusedAttention: Bool = false
    /// Share of the BF16 peak that fused attention kernels reach, forward and backward, where
    /// measured (FlashAttention-2 on Hopper: 35%, Shah et al. 2024); nil: `CostModel`'s share of
    /// the device's sustained matrix rate.
    public var fusedAttentionShare: Double?

    public init(name: String, bf16TFLOPS: Double, achievable: Double, memoryGB: Double, memoryBandwidthTBs: Double,
                intraNodeGBs: Double, devicesPerNode: Int, nicGbps: Double) {
        self.name = name
        self.bf16TFLOPS = bf16TFLOPS
        self.achievable = achievable
        self.memoryGB = memoryGB
        self.memoryBandwidthTBs = memoryBandwidthTBs
        self.intraNodeGBs = intraNodeGBs
        self.devicesPerNode = devicesPerNode
        self.nicGbps = nicGbps
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, aliases, vendor, bf16TFLOPS, fp32TFLOPS, achievable, narrowMatrixWidth, memoryGB, memoryBandwidthTBs, intraNodeGBs
        case devicesPerNode, nicGbps, tpp, performanceDensity, exportClass, confidence, source, architecture, fusedAttention
        case fusedAttentionShare
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownPlannerKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        aliases = try c.decodeIfPresent([String].self, forKey: .aliases) ?? []
        vendor = try c.decodeIfPresent(String.self, forKey: .vendor) ?? ""
        bf16TFLOPS = try c.decode(Double.self, forKey: .bf16TFLOPS)
        fp32TFLOPS = try c.decodeIfPresent(Double.self, forKey: .fp32TFLOPS) ?? 0
        achievable = try c.decodeIfPresent(Double.self, forKey: .achievable) ?? 0.75
        narrowMatrixWidth = try c.decodeIfPresent(Double.self, forKey: .narrowMatrixWidth)
        memoryGB = try c.decode(Double.self, forKey: .memoryGB)
        memoryBandwidthTBs = try c.decode(Double.self, forKey: .memoryBandwidthTBs)
        intraNodeGBs = try c.decodeIfPresent(Double.self, forKey: .intraNodeGBs) ?? 0
        devicesPerNode = try c.decodeIfPresent(Int.self, forKey: .devicesPerNode) ?? 1
        nicGbps = try c.decodeIfPresent(Double.self, forKey: .nicGbps) ?? 1
        tpp = try c.decodeIfPresent(Double.self, forKey: .tpp) ?? 0
        performanceDensity = try c.decodeIfPresent(Double.self, forKey: .performanceDensity)
        exportClass = try c.decodeIfPresent(String.self, forKey: .exportClass) ?? "none"
        confidence = try c.decodeIfPresent(String.self, forKey: .confidence) ?? "U"
        source = try c.decodeIfPresent(String.self, forKey: .source) ?? ""
        architecture = try c.decodeIfPresent(String.self, forKey: .architecture) ?? ""
        // A device file's own GPU is most likely a current one: fused unless it says otherwise.
        fusedAttention = try c.decodeIfPresent(Bool.self, forKey: .fusedAttention) ?? true
        fusedAttentionShare = try c.decodeIfPresent(Double.self, forKey: .fusedAttentionShare)
        try validate(path: decoder.codingPath.map(\.stringValue).joined(separator: "."))
    }

    func validate(path: String) throws {
        let positive: [(String, Double)] = [("bf16TFLOPS", bf16TFLOPS), ("memoryGB", memoryGB), ("memoryBandwidthTBs", memoryBandwidthTBs)]
        for (field, value) in positive where !(value > 0) || !value.isFinite {
            throw PlannerError(field: "\(path).\(field)", reason: "must be a positive number, got \(value)")
        }
        guard achievable > 0, achievable <= 1 else { throw PlannerError(field: "\(path).achievable", reason: "must be in (0, 1], got \(achievable)") }
        guard fp32TFLOPS >= 0, fp32TFLOPS.isFinite else { throw PlannerError(field: "\(path).fp32TFLOPS", reason: "must not be negative, got \(fp32TFLOPS)") }
        if let share = fusedAttentionShare, !(share > 0 && share <= 1) {
            throw PlannerError(field: "\(path).fusedAttentionShare", reason: "must be in (0, 1], got \(share)")
        }
        if let w = narrowMatrixWidth, !(w >= 0 && w.isFinite) {
            throw PlannerError(field: "\(path).narrowMatrixWidth", reason: "must be a non-negative number, got \(w)")
        }
        guard devicesPerNode >= 1 else { throw PlannerError(field: "\(path).devicesPerNode", reason: "must be at least 1, got \(devicesPerNode)") }
        guard intraNodeGBs >= 0, nicGbps > 0 else {
            throw PlannerError(field: "\(path).nicGbps", reason: "bandwidths must be positive (intraNodeGBs may be 0 for one device per node)")
        }
    }

    /// Peak FLOP/s at a precision: the tensor rate for BF16/FP16, the FP32 rate for FP32 (0 when
    /// the catalogue has none).
    public func peakFLOPS(_ precision: Precision) -> Double {
        (precision == .fp32 ? fp32TFLOPS : bf16TFLOPS) * 1e12
    }

    /// Sustained FLOP/s for large matrix products at a precision.
    public func sustainedFLOPS(_ precision: Precision) -> Double { peakFLOPS(precision) * achievable }
}

/// The devices the planner knows: the catalogue shipped with Tributary, plus the user's own.
public struct DeviceCatalogue: Sendable {
    public private(set) var devices: [DeviceSpec]

    /// The shipped catalogue (`devices.yaml`, facts from the project's reference notes).
    public static func shipped() throws -> DeviceCatalogue {
        guard let url = Bundle.module.url(forResource: "devices", withExtension: "yaml"),
              let text = try? String(contentsOf: url, encoding: .utf8)
        else { throw PlannerError(field: "", reason: "the shipped device catalogue devices.yaml is missing from the build") }
        return try DeviceCatalogue(yaml: text, source: "devices.yaml")
    }

    public init(devices: [DeviceSpec]) {
        self.devices = devices
    }

    /// Parses a catalogue file: `devices:` followed by a list of devices.
    /// The catalogue as a device file (`devices:` and one entry per device) that `init(yaml:)` reads back.
    public func yaml() throws -> String {
        struct File: Encodable { var devices: [DeviceSpec] }
        return try YAMLEncoder().encode(File(devices: devices))
    }

    public init(yaml text: String, source: String) throws {
        devices = try decodePlannerList(DeviceSpec.self, key: "devices", from: text, source: source)
        var seen: Set<String> = []
        for d in devices {
            for key in [d.name] + d.aliases {
                guard seen.insert(key.lowercased()).inserted else {
                    throw PlannerError(field: "devices", reason: "'\(key)' names two devices in \(source)")
                }
            }
        }
    }

    /// Adds `other`'s devices, replacing ones of the same name.
    public mutating func merge(_ other: DeviceCatalogue) {
        for d in other.devices {
            devices.removeAll { $0.name.lowercased() == d.name.lowercased() }
            devices.append(d)
        }
    }

    /// The device with this name or alias (case-insensitive), or an error that suggests the
    /// closest names of the same kind (the same family of names: RTX cards for an RTX card,
    /// Ascend for Ascend), then any.
    public func device(named name: String) throws -> DeviceSpec {
        let key = name.lowercased()
        if let d = devices.first(where: { $0.name.lowercased() == key || $0.aliases.contains { $0.lowercased() == key } }) { return d }
        let family = Self.family(key)
        func rank(_ d: DeviceSpec) -> (Int, Int) {
            let names = [d.name] + d.aliases
            let sameKind = names.contains { Self.family($0.lowercased()) == family } ? 0 : 1
            return (sameKind, names.map { editDistance($0.lowercased(), key) }.min()!)
        }
        let ranked = devices.map { ($0.name, rank($0)) }.sorted { $0.1 < $1.1 }
        let shown = String(name.unicodeScalars.prefix(64).filter { !$0.properties.generalCategory.isControlOrFormat })
        throw PlannerError(field: "device", reason: "unknown device '\(shown)'; closest: \(ranked.prefix(3).map(\.0).joined(separator: ", ")) "
                           + "(`tributary devices` lists them all; add one with --devices FILE)")
    }

    /// The kind a device name suggests: its letters before the first digit, after a vendor word
    /// ("nvidia-rtx-2080-ti" → "rtx", "a40" → "a", "ascend-910b" → "ascend", "mi250x" → "mi").
    static func family(_ name: String) -> String {
        var words = name.split { !$0.isLetter && !$0.isNumber }.map(String.init)
        while let first = words.first, ["nvidia", "amd", "intel", "huawei", "apple", "geforce", "tesla", "habana"].contains(first) {
            words.removeFirst()
        }
        return String((words.first ?? "").prefix { $0.isLetter })
    }
}

extension Unicode.GeneralCategory {
    /// Control, format, and unassigned characters: never echoed back raw.
    var isControlOrFormat: Bool { self == .control || self == .format || self == .unassigned || self == .lineSeparator || self == .paragraphSeparator }
}

extension ClusterSpec {
    /// Checks that every site's device is in the catalogue; the error names the site and the
    /// file's line.
    public func checkDevices(in catalogue: DeviceCatalogue, yaml text: String, source: String) throws {
        for (i, site) in sites.enumerated() {
            do { _ = try catalogue.device(named: site.device) } catch let error as PlannerError {
                let field = "sites.\(i).device"
                let line = (try? Yams.compose(yaml: text)).flatMap { $0 }.flatMap { lineOf(field, in: $0) }
                throw PlannerError(field: field, reason: "site '\(site.name)': \(error.reason)", location: line.map { "\(source):\($0)" } ?? source)
            }
        }
    }
}
