import Foundation
import Yams

/// A real link between two sites (or a site's devices and the outside): bandwidth in Gbit/s and
/// one-way latency in milliseconds. (An emulated link of a local run is Transport's `LinkSpec`.)
public struct SiteLink: Codable, Sendable, Equatable {
    public var gbps: Double
    public var latencyMs: Double

    public init(gbps: Double, latencyMs: Double) {
        self.gbps = gbps
        self.latencyMs = latencyMs
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case gbps, latencyMs }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownPlannerKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        gbps = try c.decode(Double.self, forKey: .gbps)
        latencyMs = try c.decode(Double.self, forKey: .latencyMs)
    }

    /// Bytes per second.
    public var bytesPerSecond: Double { gbps * 1e9 / 8 }
    public var latency: Double { latencyMs / 1000 }
}

/// Devices of one kind at one site.
public struct SiteSpec: Codable, Sendable, Equatable {
    public var name: String
    /// Catalogue name of the devices.
    public var device: String
    public var count: Int
    /// Overrides of the catalogue's node shape and links, when this site differs.
    public var devicesPerNode: Int?
    public var intraNodeGBs: Double?
    /// Scale-out bandwidth per device inside the site, Gbit/s.
    public var nicGbps: Double?
    /// One-way latency inside the site, milliseconds.
    public var latencyMs: Double?

    public init(name: String, device: String, count: Int) {
        self.name = name
        self.device = device
        self.count = count
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, device, count, devicesPerNode, intraNodeGBs, nicGbps, latencyMs }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownPlannerKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        device = try c.decode(String.self, forKey: .device)
        count = try c.decode(Int.self, forKey: .count)
        devicesPerNode = try c.decodeIfPresent(Int.self, forKey: .devicesPerNode)
        intraNodeGBs = try c.decodeIfPresent(Double.self, forKey: .intraNodeGBs)
        nicGbps = try c.decodeIfPresent(Double.self, forKey: .nicGbps)
        latencyMs = try c.decodeIfPresent(Double.self, forKey: .latencyMs)
    }
}

/// Links between sites: a default and per-pair overrides.
public struct InterSiteLinks: Codable, Sendable, Equatable {
    public struct Pair: Codable, Sendable, Equatable {
        public var sites: [String]
        public var gbps: Double
        public var latencyMs: Double

        public init(sites: [String], gbps: Double, latencyMs: Double) {
            self.sites = sites
            self.gbps = gbps
            self.latencyMs = latencyMs
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case sites, gbps, latencyMs }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownPlannerKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            sites = try c.decode([String].self, forKey: .sites)
            gbps = try c.decode(Double.self, forKey: .gbps)
            latencyMs = try c.decode(Double.self, forKey: .latencyMs)
        }
    }
    public var `default`: SiteLink
    public var between: [Pair] = []
    /// Whether a link's bandwidth is for each pair of devices (every machine connected or shaped
    /// on its own, as in DT-FM's experiments) rather than one pipe the two sites' devices share.
    public var perDevice = false
    /// Share of the nominal bandwidth collectives reach on these links: `CostModel.linkEfficiency`
    /// for real networks; 1 for Tributary's link emulator, which delivers its nominal rate.
    public var efficiency: Double?

    public init(default link: SiteLink, between: [Pair] = [], perDevice: Bool = false, efficiency: Double? = nil) {
        self.default = link
        self.between = between
        self.perDevice = perDevice
        self.efficiency = efficiency
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case `default`, between, perDevice, efficiency }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownPlannerKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.default = try c.decode(SiteLink.self, forKey: .default)
        between = try c.decodeIfPresent([Pair].self, forKey: .between) ?? []
        perDevice = try c.decodeIfPresent(Bool.self, forKey: .perDevice) ?? false
        efficiency = try c.decodeIfPresent(Double.self, forKey: .efficiency)
    }
}

/// A cluster: sites of devices and the links between them.
public struct ClusterSpec: Codable, Sendable, Equatable {
    public var name: String = "cluster"
    public var sites: [SiteSpec]
    public var links: InterSiteLinks?

    public init(name: String, sites: [SiteSpec], links: InterSiteLinks? = nil) {
        self.name = name
        self.sites = sites
        self.links = links
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, sites, links }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownPlannerKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? "cluster"
        sites = try c.decode([SiteSpec].self, forKey: .sites)
        links = try c.decodeIfPresent(InterSiteLinks.self, forKey: .links)
    }

    /// Parses a cluster file; errors name the field and its line.
    public static func load(yaml text: String, source: String) throws -> ClusterSpec {
        let spec = try decodePlannerYAML(ClusterSpec.self, from: text, source: source)
        do { try spec.check() } catch let error as PlannerError {
            let line = (try? Yams.compose(yaml: text)).flatMap { $0 }.flatMap { lineOf(error.field, in: $0) }
            throw PlannerError(field: error.field, reason: error.reason, location: line.map { "\(source):\($0)" } ?? source)
        }
        return spec
    }

    /// Consistency the types cannot express: names, counts, links that name real sites.
    public func check() throws {
        guard !sites.isEmpty else { throw PlannerError(field: "sites", reason: "a cluster needs at least one site") }
        var names: Set<String> = []
        for (i, s) in sites.enumerated() {
            guard names.insert(s.name).inserted else { throw PlannerError(field: "sites.\(i).name", reason: "'\(s.name)' is used by two sites") }
            guard s.count > 0 else { throw PlannerError(field: "sites.\(i).count", reason: "must be positive, got \(s.count)") }
            if let d = s.devicesPerNode, d <= 0 { throw PlannerError(field: "sites.\(i).devicesPerNode", reason: "must be positive, got \(d)") }
            for (field, value) in [("intraNodeGBs", s.intraNodeGBs), ("nicGbps", s.nicGbps), ("latencyMs", s.latencyMs)] {
                if let value, value < 0 || !value.isFinite { throw PlannerError(field: "sites.\(i).\(field)", reason: "must not be negative, got \(value)") }
            }
        }
        if let links {
            guard links.default.gbps > 0, links.default.latencyMs >= 0 else {
                throw PlannerError(field: "links.default", reason: "needs gbps > 0 and latencyMs >= 0")
            }
            if let e = links.efficiency, !(e > 0 && e <= 1) {
                throw PlannerError(field: "links.efficiency", reason: "must be in (0, 1], got \(e)")
            }
            for (i, pair) in links.between.enumerated() {
                guard pair.sites.count == 2, pair.sites[0] != pair.sites[1] else {
                    throw PlannerError(field: "links.between.\(i).sites", reason: "must name two different sites")
                }
                for name in pair.sites where !names.contains(name) {
                    throw PlannerError(field: "links.between.\(i).sites", reason: "no site named '\(name)'; sites: \(sites.map(\.name).joined(separator: ", "))")
                }
                guard pair.gbps > 0, pair.latencyMs >= 0 else {
                    throw PlannerError(field: "links.between.\(i).gbps", reason: "needs gbps > 0 and latencyMs >= 0")
                }
            }
        } else if sites.count > 1 {
            throw PlannerError(field: "links", reason: "a cluster of \(sites.count) sites needs links: {default: {gbps: ..., latencyMs: ...}}")
        }
    }

    /// The link between two sites.
    public func link(_ a: String, _ b: String) -> SiteLink {
        if let pair = links?.between.first(where: { Set($0.sites) == Set([a, b]) }) { return SiteLink(gbps: pair.gbps, latencyMs: pair.latencyMs) }
        return links?.default ?? SiteLink(gbps: 1, latencyMs: 50)
    }

    /// Share of nominal bandwidth that collectives reach between sites.
    public var linkEfficiency: Double { links?.efficiency ?? CostModel.linkEfficiency }

    /// Devices in the cluster.
    public var deviceCount: Int { sites.reduce(0) { $0 + $1.count } }
}
