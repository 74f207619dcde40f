import Foundation

/// The CPU cores this process may use: the CPUs its affinity mask allows, capped by a cgroup CPU quota.
///
/// `ProcessInfo.activeProcessorCount` counts the machine's online CPUs, so a worker pinned with `taskset`
/// or given 2 CPUs by a container would start one thread per host core and oversubscribe them.
public enum UsableCores {
    /// The cores this process may use now (at least 1).
    public static var count: Int {
        var cores = ProcessInfo.processInfo.activeProcessorCount
        if let allowed = affinityCount() { cores = min(cores, allowed) }
        if let quota = cgroupQuota() { cores = min(cores, quota) }
        return max(1, cores)
    }

    /// The CPUs in this process's affinity mask (Linux: `Cpus_allowed` in /proc/self/status), or nil.
    static func affinityCount() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").lazy.compactMap { line -> Int? in
            guard line.hasPrefix("Cpus_allowed:") else { return nil }
            return allowedCount(mask: String(line.dropFirst("Cpus_allowed:".count)))
        }.first
    }

    /// The set bits of a hexadecimal CPU mask written in comma-separated words ("ff,00000003").
    public static func allowedCount(mask: String) -> Int? {
        var count = 0
        for character in mask where !character.isWhitespace && character != "," {
            guard let digit = character.hexDigitValue else { return nil }
            count += digit.nonzeroBitCount
        }
        return count > 0 ? count : nil
    }

    /// Whole cores a cgroup's CPU quota allows (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), rounded up.
    static func cgroupQuota(root: String = "/sys/fs/cgroup") -> Int? {
        if let text = try? String(contentsOfFile: root + "/cpu.max", encoding: .utf8) {
            return quotaCores(cpuMax: text)
        }
        if let quota = try? String(contentsOfFile: root + "/cpu/cpu.cfs_quota_us", encoding: .utf8),
           let period = try? String(contentsOfFile: root + "/cpu/cpu.cfs_period_us", encoding: .utf8) {
            return quotaCores(cpuMax: quota.trimmingCharacters(in: .whitespacesAndNewlines) + " " + period)
        }
        return nil
    }

    /// Parses "QUOTA PERIOD" ("max 100000" or "-1 100000" when unlimited) into whole cores.
    public static func quotaCores(cpuMax: String) -> Int? {
        let parts = cpuMax.split(whereSeparator: \.isWhitespace)
        guard parts.count >= 2, let quota = Double(parts[0]), quota > 0,
              let period = Double(parts[1]), period > 0 else { return nil }
        return max(1, Int((quota / period).rounded(.up)))
    }
}
