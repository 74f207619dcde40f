import Basics
import ArgumentParser
import Collectives
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import TensorCore
import Transport
import Wire

/// One worker of a multi-process ring on loopback, driven by `bench allreduce` and the tests.
///
/// Rendezvous over stdio: prints `PORT <p>` once listening on port 0, reads one line
/// `PEERS <host:port of rank 0>,<host:port of rank 1>,…`, joins the ring, runs the all-reduces,
/// prints `RESULT <json>`.
struct RingWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring-worker",
        abstract: "One worker of a loopback ring (used by bench allreduce and the tests).",
        shouldDisplay: false
    )

    @Option var rank: Int
    @Option var workers: Int
    @Option(help: "Values in the vector.") var values: Int
    @Option var codec = "fp32"
    @Option var link = "unlimited"
    @Option var rounds = 1
    @Option var seed: UInt64 = 1
    @Option(help: "Address to listen on.") var listenHost = "127.0.0.1"

    struct Result: Codable {
        var rank: Int
        var codec: String
        var values: Int
        /// Seconds of each all-reduce round.
        var roundSeconds: [Double]
        var bytesSentPerRound: Int
        var maxAbsoluteError: Double
        var relativeRMSError: Double
        /// FNV-1a of the result's bytes: equal on every worker when they agree bit for bit.
        var resultHash: UInt64
    }

    func validate() throws {
        guard workers >= 1, workers <= 64 else { throw ValidationError("--workers must be in 1...64") }
        guard (0..<workers).contains(rank) else { throw ValidationError("--rank must be in 0..<\(workers)") }
        guard values >= 0, values <= 1 << 30 else { throw ValidationError("--values must be in 0...\(1 << 30)") }
        guard CodecID(name: codec) != nil else { throw ValidationError("unknown --codec '\(codec)'") }
        _ = try LinkSpec(parsing: link)
    }

    func run() async throws {
        let id = CodecID(name: codec)!
        let group = MultiThreadedEventLoopGroup.singleton
        var options = PeerLink.Options(local: Hello(runID: seed, layoutHash: UInt64(values), vectorLength: UInt64(values),
                                                    rank: UInt32(rank), name: "worker-\(rank)"))
        options.link = try LinkSpec(parsing: link)
        options.limits = FrameLimits(maxPayloadBytes: 8 << 20)
        let listener = try await PeerListener.bind(host: listenHost, port: 0, options: options, group: group)
        print("PORT \(listener.port)")
        fflush(nil)
        guard let line = readLine(), line.hasPrefix("PEERS ") else { throw ValidationError("expected a PEERS line on stdin") }
        let peers = line.dropFirst(6).split(separator: ",").compactMap { entry -> (host: String, port: Int)? in
            let parts = entry.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else { return nil }
            return (String(parts[0]), port)
        }
        guard peers.count == workers else { throw ValidationError("PEERS lists \(peers.count) host:port entries for \(workers) workers") }

        let ring = try await Ring.form(rank: rank, peers: peers, listener: listener, options: options, group: group, runID: seed)

        let vector = UnsafeMutableBufferPointer<Float>.allocate(capacity: values)
        defer { vector.deallocate() }
        var random = LaneRandom(seed: seed &+ UInt64(rank))
        var roundSeconds: [Double] = []
        var bytes = 0
        for round in 0..<rounds {
            fillInput(vector, rank: rank)
            let stats = try await ring.allReduceSum(vector, codec: id, round: UInt64(round), random: &random)
            roundSeconds.append(stats.seconds)
            bytes = stats.bytesSent
        }
        let (maxError, rms) = compareWithExactSum(vector)
        var hasher = FNV1a()
        hasher.add(UnsafeRawBufferPointer(vector))
        let hash = hasher.value
        let result = Result(rank: rank, codec: id.name, values: values, roundSeconds: roundSeconds, bytesSentPerRound: bytes,
                            maxAbsoluteError: maxError, relativeRMSError: rms, resultHash: hash)
        print("RESULT " + String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        fflush(nil)
        // Wait for the neighbour to finish reading before saying goodbye.
        try await Task.sleep(nanoseconds: 200_000_000)
        await ring.close()
        await listener.close()
    }

    /// Worker r's input: a seeded pseudo-random vector in [−1, 1).
    private func fillInput(_ v: UnsafeMutableBufferPointer<Float>, rank r: Int) {
        var random = LaneRandom(seed: seed &* 1000 &+ UInt64(r))
        var i = 0
        while i < v.count {
            let u = random.next() * 2 - 1
            for j in 0..<min(16, v.count - i) { v[i + j] = u[j] }
            i += 16
        }
    }

    /// Max and relative RMS error against the exact sum, regenerating every worker's input.
    private func compareWithExactSum(_ v: UnsafeMutableBufferPointer<Float>) -> (Double, Double) {
        var streams = (0..<workers).map { LaneRandom(seed: seed &* 1000 &+ UInt64($0)) }
        var maxError = 0.0, errorSquares = 0.0, sumSquares = 0.0
        var i = 0
        while i < v.count {
            var exact = [Double](repeating: 0, count: 16)
            for w in 0..<workers {
                let u = streams[w].next() * 2 - 1
                for j in 0..<16 { exact[j] += Double(u[j]) }
            }
            for j in 0..<min(16, v.count - i) {
                let e = Double(v[i + j]) - exact[j]
                maxError = max(maxError, abs(e))
                errorSquares += e * e
                sumSquares += exact[j] * exact[j]
            }
            i += 16
        }
        return (maxError, (errorSquares / max(sumSquares, 1e-30)).squareRoot())
    }
}
