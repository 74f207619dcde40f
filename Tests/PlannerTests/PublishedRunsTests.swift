import Planner
import XCTest

/// DT-FM's geo-distributed cases against the cost model (the other published runs, Megatron-LM
/// 2021 and DT-FM case 1 among them, are in configs/planner/published-runs.yaml).
final class PublishedRunsTests: XCTestCase {}

/// DT-FM cases 2–5: the same model and batch on 64 V100s whose links DT-FM shaped per machine
/// with tc (DS3Lab/Decentralized_FM_alpha, scheduler/generate_sim_com_matrices.py: bandwidth and
/// delay for every pair of instances). The log does not record the scheduler's assignment; at
/// this batch a pipeline boundary carries 4096 × 8.4 MB per step against 0.53 GB of gradient
/// per device, so the layout given here keeps each pipeline's 8 stages inside a region and puts
/// the data-parallel replicas of a stage in different regions (DT-FM's own reasoning), syncing
/// every step.
extension PublishedRunsTests {
    struct DTFMCase {
        var name: String
        var sites: [SiteSpec]
        var links: InterSiteLinks
        var reportedPFLOPS: Double
        var reportedSeconds: Double
    }

    static func region(_ name: String, count: Int, gbps: Double, latencyMs: Double, devicesPerNode: Int = 1) -> SiteSpec {
        var site = SiteSpec(name: name, device: "V100-16GB", count: count)
        site.devicesPerNode = devicesPerNode
        site.nicGbps = gbps
        site.latencyMs = latencyMs
        return site
    }

    /// Measured AWS region pairs DT-FM emulated: one-way delay in ms, bandwidth in Gbit/s.
    static let regionPairs: [(String, String, Double, Double)] = [
        ("Oregon", "Virginia", 67, 0.79), ("Oregon", "Ohio", 49, 1.10), ("Oregon", "Tokyo", 96, 0.523), ("Oregon", "Seoul", 124, 0.46),
        ("Oregon", "London", 136, 0.42), ("Oregon", "Frankfurt", 143, 0.404), ("Oregon", "Ireland", 124, 0.482),
        ("Virginia", "Ohio", 11, 1.12), ("Virginia", "Tokyo", 143, 0.524), ("Virginia", "Seoul", 172, 0.500),
        ("Virginia", "London", 76, 1.16), ("Virginia", "Frankfurt", 90, 1.02), ("Virginia", "Ireland", 67, 1.05),
        ("Ohio", "Tokyo", 130, 0.694), ("Ohio", "Seoul", 159, 0.529), ("Ohio", "London", 86, 1.05), ("Ohio", "Frankfurt", 99, 0.799),
        ("Ohio", "Ireland", 77, 1.14), ("Tokyo", "Seoul", 34, 1.10), ("Tokyo", "London", 210, 0.366), ("Tokyo", "Frankfurt", 223, 0.36),
        ("Tokyo", "Ireland", 199, 0.465), ("Seoul", "London", 238, 0.342), ("Seoul", "Frankfurt", 235, 0.358), ("Seoul", "Ireland", 228, 0.335),
        ("London", "Frankfurt", 14, 1.14), ("London", "Ireland", 12, 1.09), ("Frankfurt", "Ireland", 24, 1.08),
        // Case 4's fourth region.
        ("Virginia", "California", 59, 1.05), ("Oregon", "California", 12, 1.25), ("California", "Ohio", 52, 1.02),
    ]

    static func pairs(among names: [String]) -> [InterSiteLinks.Pair] {
        regionPairs.filter { names.contains($0.0) && names.contains($0.1) }
            .map { InterSiteLinks.Pair(sites: [$0.0, $0.1], gbps: $0.3, latencyMs: $0.2) }
    }

    static var dtfmCases: [DTFMCase] {
        let world = ["Oregon", "Virginia", "Ohio", "Tokyo", "Seoul", "London", "Frankfurt", "Ireland"]
        let usa = ["Virginia", "Oregon", "California", "Ohio"]
        return [
            // 8 × p3.8xlarge (4 V100 on NVLink) and 32 × p3.2xlarge, 10 Gbit/s between instances.
            DTFMCase(name: "case 2 (spot)", sites: [region("p3.8xlarge", count: 32, gbps: 10, latencyMs: 0, devicesPerNode: 4),
                                                    region("p3.2xlarge", count: 32, gbps: 10, latencyMs: 0)],
                     links: InterSiteLinks(default: SiteLink(gbps: 10, latencyMs: 0), perDevice: true), reportedPFLOPS: 2.090, reportedSeconds: 45.24),
            // Two universities (Ohio, Virginia): 5 Gbit/s and 1 ms inside, 1.12 Gbit/s and 11 ms between.
            DTFMCase(name: "case 3 (two universities)", sites: ["Ohio", "Virginia"].map { region($0, count: 32, gbps: 5, latencyMs: 1) },
                     links: InterSiteLinks(default: SiteLink(gbps: 1.12, latencyMs: 11), perDevice: true), reportedPFLOPS: 1.735, reportedSeconds: 54.50),
            // Four US regions of 16: 2 Gbit/s and 10 ms inside a region.
            DTFMCase(name: "case 4 (regional)", sites: usa.map { region($0, count: 16, gbps: 2, latencyMs: 10) },
                     links: InterSiteLinks(default: SiteLink(gbps: 1, latencyMs: 50), between: pairs(among: usa), perDevice: true),
                     reportedPFLOPS: 1.313, reportedSeconds: 72.02),
            // Eight cities worldwide, 8 V100s each.
            DTFMCase(name: "case 5 (worldwide)", sites: world.map { region($0, count: 8, gbps: 2, latencyMs: 10) },
                     links: InterSiteLinks(default: SiteLink(gbps: 1, latencyMs: 50), between: pairs(among: world), perDevice: true),
                     reportedPFLOPS: 0.909, reportedSeconds: 104.06),
        ]
    }

    /// Cases 2–5 as measured-run checks (tokens/s per device), for the whole set's bounds.
    static func dtfmChecks() throws -> [MeasuredRunCheck] {
        try dtfmCases.map { c in
            let plan = try dtfmPlan(c)
            let reported = 4096 * 2048 / c.reportedSeconds / Double(plan.throughput.devices)
            return MeasuredRunCheck(id: "DTFM-" + c.name.prefix(6).filter(\.isNumber), source: "DT-FM \(c.name)", plan: plan,
                                    predictedTokensPerSecondPerDevice: plan.throughput.tokensPerSecondPerDevice,
                                    reportedTokensPerSecondPerDevice: reported)
        }
    }

    /// A case's plan: every region runs 8-stage pipelines with micro-batch 1 and the regions sync every step.
    static func dtfmPlan(_ c: DTFMCase) throws -> Plan {
        let cluster = ClusterSpec(name: c.name, sites: c.sites, links: c.links)
        var layouts: [String: GroupLayout] = [:]
        for site in c.sites {
            layouts[site.name] = GroupLayout(tensorParallel: 1, pipelineStages: 8, dataParallel: site.count / 8, microBatch: 1, recompute: false)
        }
        let model = ModelSpec(name: "gpt3-xl", layers: 24, hidden: 2048, heads: 16, sequenceLength: 2048, vocabulary: 50257)
        return try Planner.evaluate(cluster: cluster, catalogue: try DeviceCatalogue.shipped(), model: model,
                                    training: TrainingSpec(globalBatchSequences: 4096), layouts: layouts)
    }

    func testDTFMGeoDistributedCasesWithin25Percent() throws {
        let (l, h, s) = (24.0, 2048.0, 2048.0)
        let flops = 96 * 4096 * s * l * h * h * (1 + s / (6 * h))
        for c in Self.dtfmCases {
            let cluster = ClusterSpec(name: c.name, sites: c.sites, links: c.links)
            let plan = try Self.dtfmPlan(c)
            let predicted = flops / plan.stepSeconds / 1e15
            let error = predicted / c.reportedPFLOPS - 1
            // The simulator replays the same plan on the same links.
            let simulated = Simulator.run(plan: plan, cluster: cluster, steps: 2)
            print(String(format: "DT-FM %@: predicted %.3f PFLOP/s (%.2f s/iteration: pipelines %.2f s, ring %@ %.2f s; simulated %.2f s), reported %.3f (%.2f s): %+.1f%%",
                         c.name as NSString, predicted, plan.stepSeconds, plan.sites.map(\.cost.stepSeconds).max()!,
                         plan.crossSiteRing.joined(separator: "-") as NSString, plan.crossSiteSecondsPerStep, simulated.meanStepSeconds,
                         c.reportedPFLOPS, c.reportedSeconds, 100 * error))
            XCTAssertLessThan(abs(error), 0.25, c.name)
            XCTAssertEqual(simulated.meanStepSeconds, plan.stepSeconds, accuracy: 0.05 * plan.stepSeconds, c.name)
        }
    }

    /// The ring order matters on the worldwide case: the listed order's slowest edge is Seoul →
    /// London (0.342 Gbit/s). By hand: Tokyo and Seoul (1.10 between them) must be entered and
    /// left by two edges to the other six cities; the widest such pairs are Tokyo–Virginia 0.524
    /// with Seoul–Ohio 0.529, and Tokyo–Oregon 0.523 (96 ms instead of 143) with Seoul–Ohio; the
    /// US and Europe then close the ring above 0.79 (Ireland–Ohio 1.14, Virginia–London 1.16).
    func testCrossSiteRingIsOrderedForTheLinks() throws {
        let worldwide = try XCTUnwrap(Self.dtfmCases.last)
        let cluster = ClusterSpec(name: worldwide.name, sites: worldwide.sites, links: worldwide.links)
        var layouts: [String: GroupLayout] = [:]
        for site in worldwide.sites { layouts[site.name] = GroupLayout(tensorParallel: 1, pipelineStages: 8, dataParallel: 1, microBatch: 1, recompute: false) }
        let plan = try Planner.evaluate(cluster: cluster, catalogue: try DeviceCatalogue.shipped(),
                                        model: ModelSpec(name: "xl", layers: 24, hidden: 2048, heads: 16), training: TrainingSpec(globalBatchSequences: 4096),
                                        layouts: layouts)
        let ring = plan.crossSiteRing
        let slowest = (0..<ring.count).map { cluster.link(ring[$0], ring[($0 + 1) % ring.count]).gbps }.min()!
        XCTAssertGreaterThanOrEqual(slowest, 0.523, "ring \(ring)")
        XCTAssertEqual(Set(ring), Set(worldwide.sites.map(\.name)))
    }
}

