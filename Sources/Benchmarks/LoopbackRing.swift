import Foundation

/// Starts `tributary ring-worker` processes, joins them into a ring, collects results: on
/// loopback, or one per network namespace of `namespaces`.
public struct LoopbackRing {
    public let workers: Int
    public let values: Int
    public let codec: String
    public let link: String
    public let rounds: Int
    public let seed: UInt64
    public var namespaces: NetworkNamespaces?
    /// A folder holding a run authority (`RunAuthority.loadOrCreate`): the workers then link by
    /// mutual TLS, each with a certificate from it; nil links them by plain TCP.
    public var authorityFolder: URL?
    /// After the all-reduces, rank 0 hands its vector straight to this rank (`ring-worker --direct-to`).
    public var directTo: Int?

    public init(workers: Int, values: Int, codec: String, link: String, rounds: Int, seed: UInt64, namespaces: NetworkNamespaces? = nil) {
        (self.workers, self.values, self.codec, self.link, self.rounds, self.seed) = (workers, values, codec, link, rounds, seed)
        self.namespaces = namespaces
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public func run() throws -> [RingWorkerResult] {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var processes: [(Process, FileHandle, FileHandle)] = []
        defer { for (p, _, _) in processes where p.isRunning { p.terminate() } }
        for rank in 0..<workers {
            let p = Process()
            var arguments = ["ring-worker", "--rank", "\(rank)", "--workers", "\(workers)", "--values", "\(values)",
                             "--codec", codec, "--link", link, "--rounds", "\(rounds)", "--seed", "\(seed)"]
                + (authorityFolder.map { ["--authority", $0.path] } ?? []) + (directTo.map { ["--direct-to", "\($0)"] } ?? [])
            if let namespaces {
                p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
                arguments = ["netns", "exec", namespaces.names[rank], executable.path] + arguments + ["--listen-host", namespaces.address(of: rank)]
            } else {
                p.executableURL = executable
            }
            p.arguments = arguments
            let stdin = Pipe(), stdout = Pipe()
            p.standardInput = stdin
            p.standardOutput = stdout
            try p.run()
            processes.append((p, stdin.fileHandleForWriting, stdout.fileHandleForReading))
        }
        var ports: [Int] = []
        for (rank, (_, _, out)) in processes.enumerated() {
            guard let line = readLine(from: out), line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
                throw Failure(description: "worker \(rank) did not report its port")
            }
            ports.append(port)
        }
        let hosts = (0..<workers).map { namespaces?.address(of: $0) ?? "127.0.0.1" }
        let peers = "PEERS " + zip(hosts, ports).map { "\($0):\($1)" }.joined(separator: ",") + "\n"
        for (_, input, _) in processes { input.write(Data(peers.utf8)) }
        var results: [RingWorkerResult] = []
        for (rank, (p, _, out)) in processes.enumerated() {
            let rest = String(decoding: out.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus == 0,
                  let line = rest.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") })
            else { throw Failure(description: "worker \(rank) failed (exit \(p.terminationStatus))") }
            results.append(try JSONDecoder().decode(RingWorkerResult.self, from: Data(line.dropFirst(7).utf8)))
        }
        return results
    }

    /// Reads bytes up to a newline (the handle is a pipe; lines are short).
    private func readLine(from handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            let chunk = handle.readData(ofLength: 1)
            guard let byte = chunk.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == 0x0A { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }
}
