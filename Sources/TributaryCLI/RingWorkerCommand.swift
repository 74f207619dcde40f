import Basics
import ArgumentParser
import Benchmarks
import Collectives
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import RunTrust
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
    @Option(help: "Folder of a run authority: link by mutual TLS with a certificate it issues to this worker.") var authority: String?
    @Option(help: "After the all-reduces, rank 0 hands its vector straight to this rank, as a worker's state goes to a newcomer.")
    var directTo: Int?

    func validate() throws {
        guard workers >= 1, workers <= 64 else { throw ValidationError("--workers must be in 1...64") }
        guard (0..<workers).contains(rank) else { throw ValidationError("--rank must be in 0..<\(workers)") }
        guard values >= 0, values <= 1 << 30 else { throw ValidationError("--values must be in 0...\(1 << 30)") }
        guard CodecID(name: codec) != nil else { throw ValidationError("unknown --codec '\(codec)'") }
        if let directTo, !(1..<workers).contains(directTo) { throw ValidationError("--direct-to must be in 1..<\(workers)") }
        _ = try LinkSpec(parsing: link)
    }

    func run() async throws {
        let id = CodecID(name: codec)!
        let group = MultiThreadedEventLoopGroup.singleton
        let names = (0..<workers).map { "worker-\($0)" }
        var options = PeerLink.Options(local: Hello(runID: seed, layoutHash: UInt64(values), vectorLength: UInt64(values),
                                                    rank: UInt32(rank), name: names[rank]))
        options.link = try LinkSpec(parsing: link)
        options.limits = FrameLimits(maxPayloadBytes: 8 << 20)
        if let authority {
            // As a coordinator would at join: a key made here, certified under this worker's name.
            let ca = try RunAuthority.loadOrCreate(folder: URL(fileURLWithPath: authority), runName: "bench")
            let key = WorkerKey()
            let certificate = try ca.issueWorkerCertificate(name: options.local.name, publicKeyPEM: key.publicKeyPEM)
            options.security = .tls(try PeerTLS(certificatePEM: try certificate.serializeAsPEM().pemString, key: key,
                                                authorityPEM: ca.certificatePEM))
        }
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

        let ring = try await Ring.form(rank: rank, peers: peers, names: names, listener: listener,
                                       options: options, group: group, runID: seed)

        let vector = UnsafeMutableBufferPointer<Float>.allocate(capacity: values)
        defer { vector.deallocate() }
        var random = LaneRandom(seed: seed &+ UInt64(rank))
        var roundSeconds: [Double] = []
        var bytes = 0
        let cpuBefore = processCPUSeconds()
        for round in 0..<rounds {
            RingWorkerInput.fill(vector, seed: seed, rank: rank)
            let stats = try await ring.allReduceSum(vector, codec: id, round: UInt64(round), random: &random)
            roundSeconds.append(stats.seconds)
            bytes = stats.bytesSent
        }
        let cpu = processCPUSeconds() - cpuBefore
        let (maxError, rms) = RingWorkerInput.errors(of: vector, seed: seed, workers: workers)
        var hasher = FNV1a()
        hasher.add(UnsafeRawBufferPointer(vector))
        let hash = hasher.value
        var result = RingWorkerResult(rank: rank, codec: id.name, values: values, roundSeconds: roundSeconds, bytesSentPerRound: bytes,
                                      maxAbsoluteError: maxError, relativeRMSError: rms, resultHash: hash)
        result.cpuSeconds = cpu
        if let directTo {
            let transfer = DirectStateTransfer(listener: listener, options: options, group: group,
                                               addresses: peers.map { .init(host: $0.host, port: $0.port) },
                                               names: names)
            let started = DispatchTime.now().uptimeNanoseconds
            if rank == 0 {
                result.directBytes = try await transfer.serve(UnsafeBufferPointer(vector), to: [directTo], timeout: .seconds(120))
            } else if rank == directTo {
                result.directBytes = try await transfer.download(from: 0, into: vector, timeout: .seconds(120))
            }
            result.directSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        }
        print("RESULT " + String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        fflush(nil)
        // Wait for the neighbour to finish reading before saying goodbye.
        try await Task.sleep(nanoseconds: 200_000_000)
        await ring.close()
        await listener.close()
    }
}

/// CPU time of this process so far, all threads.
private func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
