import Planner
import XCTest

/// The cost model against measured runs in ../shared/reference/published-runs.md, each given the
/// cluster, model, batch and layout its authors used and counted the way its source counts.
final class PublishedRunsTests: XCTestCase {
    struct MegatronRow {
        var row: Int
        var layers: Int, hidden: Int, heads: Int
        var batch: Int, gpus: Int
        var tp: Int, pp: Int
        /// Reported TFLOP/s per GPU (Eq. 3: recompute and vocabulary terms included).
        var reported: Double
    }

    static let megatron: [MegatronRow] = [
        MegatronRow(row: 1, layers: 24, hidden: 2304, heads: 24, batch: 512, gpus: 32, tp: 1, pp: 1, reported: 137),
        MegatronRow(row: 2, layers: 30, hidden: 3072, heads: 32, batch: 512, gpus: 64, tp: 2, pp: 1, reported: 138),
        MegatronRow(row: 3, layers: 36, hidden: 4096, heads: 32, batch: 512, gpus: 128, tp: 4, pp: 1, reported: 142),
        MegatronRow(row: 4, layers: 40, hidden: 6144, heads: 48, batch: 1024, gpus: 256, tp: 8, pp: 1, reported: 135),
        MegatronRow(row: 5, layers: 48, hidden: 8192, heads: 64, batch: 1536, gpus: 512, tp: 8, pp: 2, reported: 138),
        MegatronRow(row: 6, layers: 60, hidden: 10240, heads: 80, batch: 1792, gpus: 1024, tp: 8, pp: 4, reported: 140),
        MegatronRow(row: 7, layers: 80, hidden: 12288, heads: 96, batch: 2304, gpus: 1536, tp: 8, pp: 8, reported: 148),
        MegatronRow(row: 8, layers: 96, hidden: 16384, heads: 128, batch: 2160, gpus: 1920, tp: 8, pp: 16, reported: 155),
        MegatronRow(row: 9, layers: 105, hidden: 20480, heads: 128, batch: 2520, gpus: 2520, tp: 8, pp: 35, reported: 163),
        MegatronRow(row: 10, layers: 128, hidden: 25600, heads: 160, batch: 3072, gpus: 3072, tp: 8, pp: 64, reported: 163),
        // Table 2, GPT-3 175B with PTD-P at three scales.
        MegatronRow(row: 11, layers: 96, hidden: 12288, heads: 96, batch: 1536, gpus: 384, tp: 8, pp: 12, reported: 153),
        MegatronRow(row: 11, layers: 96, hidden: 12288, heads: 96, batch: 1536, gpus: 768, tp: 8, pp: 12, reported: 149),
        MegatronRow(row: 11, layers: 96, hidden: 12288, heads: 96, batch: 1536, gpus: 1536, tp: 8, pp: 12, reported: 141),
    ]

    func testMegatronA100RunsWithin25Percent() throws {
        let catalogue = try DeviceCatalogue.shipped()
        var worst = 0.0
        for r in Self.megatron {
            let model = ModelSpec(name: "row \(r.row)", layers: r.layers, hidden: r.hidden, heads: r.heads, sequenceLength: 2048, vocabulary: 51200)
            let site = try SiteResources(site: SiteSpec(name: "selene", device: "A100-80GB", count: r.gpus), catalogue: catalogue)
            let dp = r.gpus / (r.tp * r.pp)
            let training = TrainingSpec(globalBatchSequences: r.batch)
            let (layout, cost) = try XCTUnwrap(Planner.bestMicroBatch(model: model, training: training, site: site,
                                                                       tensorParallel: r.tp, pipelineStages: r.pp, dataParallel: dp,
                                                                       recompute: true), "row \(r.row) fits no micro-batch")
            // Megatron counts Eq. (3): 96·B·s·l·h²·(1 + s/6h + V/16lh) per step.
            let flops = Double(r.batch) * 2048 * model.recomputeFLOPsPerToken
            let predicted = flops / cost.stepSeconds / Double(r.gpus) / 1e12
            let error = predicted / r.reported - 1
            worst = max(worst, abs(error))
            print(String(format: "Megatron row %2d (%4d GPUs, TP%d PP%d DP%d, micro-batch %d): predicted %.1f, reported %.0f TFLOP/s per GPU (%+.1f%%)",
                         r.row, r.gpus, r.tp, r.pp, dp, layout.microBatch, predicted, r.reported, 100 * error))
            XCTAssertLessThan(abs(error), 0.25, "row \(r.row)")
        }
        print(String(format: "worst Megatron error %.1f%%", 100 * worst))
    }
}

extension PublishedRunsTests {
    /// DT-FM case 1 (one data centre: 8 × p3.16xlarge, 64 V100-16GB, 100 Gbit/s inside a node as
    /// DT-FM shaped it, 25 Gbit/s between nodes): GPT3-XL-like L24 h2048, batch 4096 × 2048,
    /// micro-batch 1, fp16. DT-FM's scheduler ran 8 pipeline stages × 8 data-parallel replicas.
    /// DT-FM counts 96·B·s·l·h²·(1 + s/6h), without the vocabulary term, and reports 2.866 PFLOP/s.
    func testDTFMCaseOneWithin25Percent() throws {
        let catalogue = try DeviceCatalogue.shipped()
        var site = SiteSpec(name: "aws", device: "V100-16GB", count: 64)
        site.intraNodeGBs = 100 / 8
        site.nicGbps = 25
        let resources = try SiteResources(site: site, catalogue: catalogue)
        let model = ModelSpec(name: "gpt3-xl", layers: 24, hidden: 2048, heads: 16, sequenceLength: 2048, vocabulary: 50257)
        let training = TrainingSpec(globalBatchSequences: 4096)
        let layout = GroupLayout(tensorParallel: 1, pipelineStages: 8, dataParallel: 8, microBatch: 1, recompute: false)
        let cost = CostModel.evaluate(model: model, training: training, site: resources, layout: layout)
        let (l, h, s) = (24.0, 2048.0, 2048.0)
        let flops = 96 * 4096 * s * l * h * h * (1 + s / (6 * h))
        let predicted = flops / cost.stepSeconds / 1e15
        let error = predicted / 2.866 - 1
        print(String(format: "DT-FM case 1: predicted %.3f PFLOP/s (%.2f s/iteration), reported 2.866 (32.99 s): %+.1f%%",
                     predicted, cost.stepSeconds, 100 * error))
        XCTAssertLessThan(abs(error), 0.25)
    }
}

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

    func testDTFMGeoDistributedCasesWithin25Percent() throws {
        let catalogue = try DeviceCatalogue.shipped()
        let model = ModelSpec(name: "gpt3-xl", layers: 24, hidden: 2048, heads: 16, sequenceLength: 2048, vocabulary: 50257)
        let training = TrainingSpec(globalBatchSequences: 4096)
        let (l, h, s) = (24.0, 2048.0, 2048.0)
        let flops = 96 * 4096 * s * l * h * h * (1 + s / (6 * h))
        for c in Self.dtfmCases {
            let cluster = ClusterSpec(name: c.name, sites: c.sites, links: c.links)
            var layouts: [String: GroupLayout] = [:]
            for site in c.sites {
                layouts[site.name] = GroupLayout(tensorParallel: 1, pipelineStages: 8, dataParallel: site.count / 8, microBatch: 1, recompute: false)
            }
            let plan = try Planner.evaluate(cluster: cluster, catalogue: catalogue, model: model, training: training, layouts: layouts)
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

