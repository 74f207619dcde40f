import Foundation

/// The ring that joins the sites when they sync, and what one sync costs on it.
///
/// Shared links: the sites' devices share one pipe per pair of sites, so each site sends
/// 2(k−1)/k of the whole gradient through it. Per-device links: every device has its own path
/// to its counterpart in the next site (hierarchical all-reduce: reduce inside the site, then
/// one ring per shard), so each device sends 2(k−1)/k of its share, the largest share among
/// the sites setting the pace. Either way the slowest edge of the ring sets the bandwidth and
/// every one of the 2(k−1) hops pays the worst edge's latency. The order of the sites on the
/// ring is chosen for the links, as DT-FM's scheduler orders its data-parallel groups.
public struct CrossSiteRing: Sendable, Equatable {
    /// Sites in ring order.
    public var order: [String]
    /// Bytes each sender (a site's pipe, or a device with per-device links) sends per sync.
    public var bytesPerSync: Double
    /// Seconds one sync takes.
    public var seconds: Double

    /// Values each sender holds: the whole gradient through a shared pipe, or with per-device
    /// links the largest share of any device (its stage's parameters over the site's replicas).
    static func valuesPerSender(plans: [SitePlan], model: ModelSpec, perDevice: Bool) -> Double {
        guard perDevice else { return model.parameters }
        return plans.map { $0.cost.stageParameters / Double($0.layout.dataParallel) }.max() ?? 0
    }

    /// The best ring over `sites` for a sync of `values` values at `bytesPerValue`: every order
    /// for up to 8 sites (the first fixed), the widest-next-hop greedy order beyond that.
    static func best(sites: [String], cluster: ClusterSpec, values: Double, bytesPerValue: Double) -> CrossSiteRing {
        let k = sites.count
        guard k > 1 else { return CrossSiteRing(order: sites, bytesPerSync: 0, seconds: 0) }
        let links = sites.map { a in sites.map { b in cluster.link(a, b) } }
        let bytes = 2 * Double(k - 1) / Double(k) * values * bytesPerValue
        func seconds(_ order: [Int]) -> Double {
            var slowest = Double.infinity, latency = 0.0
            for i in 0..<k {
                let link = links[order[i]][order[(i + 1) % k]]
                slowest = min(slowest, link.bytesPerSecond * cluster.linkEfficiency)
                latency = max(latency, link.latency)
            }
            return bytes / slowest + 2 * Double(k - 1) * latency
        }
        var bestOrder = Array(0..<k)
        var bestSeconds = seconds(bestOrder)
        if k <= 8 {
            var rest = Array(1..<k)
            // Lexicographic permutations of the sites after the first; strict improvement keeps
            // the earliest of equal rings, so the result is deterministic.
            while nextPermutation(&rest) {
                let order = [0] + rest
                let t = seconds(order)
                if t < bestSeconds * (1 - 1e-12) { (bestOrder, bestSeconds) = (order, t) }
            }
        } else {
            let order = widestNextOrder(from: 0, count: k) { links[$0][$1] }
            let t = seconds(order)
            if t < bestSeconds * (1 - 1e-12) { (bestOrder, bestSeconds) = (order, t) }
        }
        return CrossSiteRing(order: bestOrder.map { sites[$0] }, bytesPerSync: bytes, seconds: bestSeconds)
    }

    /// Sites `0..<count` from `start`, each next the one with the widest link from the last
    /// (then the shortest latency, then the lowest index).
    static func widestNextOrder(from start: Int, count: Int, link: (Int, Int) -> SiteLink) -> [Int] {
        var order = [start]
        var left = Set(0..<count).subtracting([start])
        while let next = left.max(by: { a, b in
            let (la, lb) = (link(order.last!, a), link(order.last!, b))
            return (la.gbps, -la.latencyMs, -a) < (lb.gbps, -lb.latencyMs, -b)
        }) {
            order.append(next)
            left.remove(next)
        }
        return order
    }

    /// Rearranges `a` into the next permutation in lexicographic order; false after the last.
    static func nextPermutation(_ a: inout [Int]) -> Bool {
        guard a.count > 1 else { return false }
        var i = a.count - 2
        while i >= 0 && a[i] >= a[i + 1] { i -= 1 }
        guard i >= 0 else { return false }
        var j = a.count - 1
        while a[j] <= a[i] { j -= 1 }
        a.swapAt(i, j)
        a[(i + 1)...].reverse()
        return true
    }
}
