import Foundation

/// A ring of Linux network namespaces joined by veth pairs, each ring edge shaped for real with
/// `tc … tbf` on its sending side (root only). Namespace r reaches namespace r+1 at 10.77.r.2.
///
/// Addresses live only inside namespaces this process creates, and are removed by `tearDown`.
public struct NetworkNamespaces {
    public let names: [String]
    public let rateBits: Double

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Whether this process may create namespaces (root with `ip` and `tc` present).
    public static var available: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/tc")
    }

    /// Creates `count` namespaces in a ring with every edge limited to `rateBits` bits per second.
    public static func ring(count: Int, rateBits: Double) throws -> NetworkNamespaces {
        let tag = "trib\(getpid())"
        let ns = NetworkNamespaces(names: (0..<count).map { "\(tag)-\($0)" }, rateBits: rateBits)
        do {
            for name in ns.names {
                try run("ip", "netns", "add", name)
                try run("ip", "-n", name, "link", "set", "lo", "up")
            }
            for r in 0..<count {
                let next = (r + 1) % count
                let a = "\(tag)e\(r)a", b = "\(tag)e\(r)b"
                try run("ip", "link", "add", a, "netns", ns.names[r], "type", "veth", "peer", "name", b, "netns", ns.names[next])
                try run("ip", "-n", ns.names[r], "addr", "add", "10.77.\(r).1/24", "dev", a)
                try run("ip", "-n", ns.names[next], "addr", "add", "10.77.\(r).2/24", "dev", b)
                try run("ip", "-n", ns.names[r], "link", "set", a, "up")
                try run("ip", "-n", ns.names[next], "link", "set", b, "up")
                // Token bucket on what r sends to r+1: the rate, a burst of a few packets, and a
                // queue of 100 ms before drops.
                try run("tc", "-n", ns.names[r], "qdisc", "add", "dev", a, "root", "tbf",
                        "rate", "\(Int(rateBits))bit", "burst", "32kb", "latency", "100ms")
            }
        } catch {
            ns.tearDown()
            throw error
        }
        return ns
    }

    /// The address worker k listens on, as its predecessor dials it.
    public func address(of k: Int) -> String { "10.77.\((k - 1 + names.count) % names.count).2" }

    /// Deletes the namespaces (and with them the veth pairs and qdiscs).
    public func tearDown() {
        for name in names { _ = try? Self.run("ip", "netns", "del", name) }
    }

    @discardableResult
    public static func run(_ tool: String, _ arguments: String...) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/\(tool)")
        p.arguments = arguments
        let err = Pipe(), out = Pipe()
        p.standardError = err
        p.standardOutput = out
        try p.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let message = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure(description: "\(tool) \(arguments.joined(separator: " ")) failed: \(String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}
