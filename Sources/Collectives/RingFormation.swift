import NIOCore
import Transport

extension Ring {
    /// Joins a ring of `peers` (host and port of every rank, in rank order) as `rank`: dials the
    /// next rank and accepts the previous one on `listener`, both with the handshake of `options`,
    /// whose `local.ringEpoch` names the ring: links of other rings are not taken in. Failures
    /// are `RingFailure`s without a round.
    public static func form(rank: Int, peers: [(host: String, port: Int)], listener: PeerListener, options: PeerLink.Options,
                            group: any EventLoopGroup, runID: UInt64, patience: TimeAmount = .seconds(60)) async throws -> Ring {
        let size = peers.count
        precondition((0..<size).contains(rank), "[Ring.form] rank \(rank) of \(size)")
        guard size > 1 else { return Ring(rank: rank, size: 1, next: nil, previous: nil, runID: runID) }
        async let accepted = listener.accept(ringEpoch: options.local.ringEpoch, rank: UInt32(rank), timeout: patience)
        let (host, port) = peers[(rank + 1) % size]
        let previousAddress = peers[(rank + size - 1) % size]
        let next: PeerLink
        do {
            next = try await PeerLink.connect(host: host, port: port, options: options, group: group, patience: patience)
        } catch let error as CancellationError {
            _ = try? await accepted
            throw error
        } catch {
            _ = try? await accepted
            throw RingFailure(error, peer: "rank \((rank + 1) % size) at \(host):\(port)", round: nil)
        }
        do {
            return Ring(rank: rank, size: size, next: next, previous: try await accepted, runID: runID)
        } catch {
            await next.close()
            if error is CancellationError { throw error }
            throw RingFailure(error, peer: "rank \((rank + size - 1) % size) at \(previousAddress.host):\(previousAddress.port)", round: nil)
        }
    }

    /// Closes both links.
    public func close() async {
        await (next as? PeerLink)?.close()
        await (previous as? PeerLink)?.close()
    }
}
