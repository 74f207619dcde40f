import NIOCore
import Transport
import Wire

/// Moves a worker's state straight from the worker that has it to the workers that have none (a
/// newcomer, or one that fell behind), over links of their own — the run's mutual TLS and the
/// ring's epoch, like the ring's links — in checksummed chunks (`StateUpload`, `StateDownload`).
/// The workers that keep their own state take no part and send nothing, and the state crosses the
/// network once per taker instead of twice around the whole ring as an all-reduce would.
public struct DirectStateTransfer: Sendable {
    /// This worker's listener, which the ring was formed on.
    public let listener: PeerListener
    /// This worker's link settings, with its rank and the ring's epoch.
    public let options: PeerLink.Options
    public let group: any EventLoopGroup
    /// Every ring member's data address, in ring order.
    public let addresses: [Address]
    /// Every ring member's name, in ring order: a link must prove the name of the rank it claims.
    public let names: [String]

    /// Host and port of a worker's data listener.
    public struct Address: Sendable, Equatable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) { (self.host, self.port) = (host, port) }
    }

    public init(listener: PeerListener, options: PeerLink.Options, group: any EventLoopGroup, addresses: [Address], names: [String]) {
        precondition(addresses.count == names.count, "[DirectStateTransfer] \(addresses.count) addresses for \(names.count) names")
        (self.listener, self.options, self.group, self.addresses, self.names) = (listener, options, group, addresses, names)
    }

    /// Sends `state` to each worker of `ranks` as it connects; returns the bytes sent. A link from
    /// anyone else (another rank, or a name that is not the rank's) is closed and not served.
    /// `timeout` bounds the wait for all the takers to connect, and for each chunk to be written (a
    /// taker that stops reading has its link closed rather than holding the source).
    public func serve(_ state: UnsafeBufferPointer<Float>, to ranks: Set<Int>, timeout: TimeAmount) async throws -> Int {
        var waiting = ranks
        var bytes = 0
        let deadline = NIODeadline.now() + timeout
        while !waiting.isEmpty {
            let link: PeerLink
            do {
                let takers = waiting
                link = try await listener.accept(ringEpoch: options.local.ringEpoch, rank: options.local.rank,
                                                 timeout: max(.zero, deadline - .now())) {
                    takers.contains(Int($0.peer.rank)) && $0.peer.name == Hello.carried(name: names[Int($0.peer.rank)])
                }
            } catch {
                throw RingFailure(error, peer: "the workers at ranks \(waiting.sorted()) that take this worker's state", round: nil)
            }
            waiting.remove(Int(link.peer.rank))
            do {
                bytes += try await upload(state, on: link, timeout: timeout)
            } catch {
                await link.close()
                throw RingFailure(error, peer: link.peerDescription, round: nil)
            }
            await link.close()
        }
        return bytes
    }

    /// Sends the chunks with a few in flight, so that the socket stays busy without queueing the whole state.
    private func upload(_ state: UnsafeBufferPointer<Float>, on link: PeerLink, timeout: TimeAmount) async throws -> Int {
        var frames = StateUpload(state: state, runID: options.local.runID, sender: options.local.rank)
        var pending: [EventLoopFuture<Void>] = []
        var bytes = 0
        /// Waits for the oldest write; closing the link when it takes longer than `timeout` fails it.
        func oldestWritten() async throws {
            let channel = link.channel
            let watchdog = link.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            do { try await pending.removeFirst().get() } catch {
                watchdog.cancel()
                // The watchdog's result is there only if it ran (a cancelled task's future fails).
                guard (try? await watchdog.futureResult.get()) != nil else { throw error }
                throw TransportError.timeout(peer: link.peerDescription, waitingFor: "the state to be read",
                                             seconds: Double(timeout.nanoseconds) / 1e9)
            }
            watchdog.cancel()
        }
        while let frame = frames.next() {
            bytes += FrameHeader.size + frame.payload.readableBytes
            pending.append(link.send(frame))
            if pending.count >= 4 { try await oldestWritten() }
        }
        while !pending.isEmpty { try await oldestWritten() }
        return bytes
    }

    /// Takes the state of the worker at `rank` into `state` (all of it, checked chunk by chunk and
    /// as a whole); returns the bytes received. `timeout` bounds the connection and each chunk's wait.
    public func download(from rank: Int, into state: UnsafeMutableBufferPointer<Float>, timeout: TimeAmount) async throws -> Int {
        let address = addresses[rank]
        let source = "rank \(rank) ('\(names[rank])') at \(address.host):\(address.port)"
        let link: PeerLink
        do {
            link = try await PeerLink.connect(host: address.host, port: address.port, options: options, group: group, patience: timeout)
        } catch {
            // Named as the ring names it (rank and worker), not by the bare address the transport gives.
            var failure = RingFailure(error, peer: source, round: nil)
            failure.peer = source
            throw failure
        }
        var download = StateDownload(count: state.count)
        var bytes = 0
        do {
            guard Int(link.peer.rank) == rank, link.peer.name == Hello.carried(name: names[rank]) else {
                throw TransportError.protocolViolation(peer: link.peerDescription, reason: "the state was to come from \(source)")
            }
            let total = state.count
            while true {
                let from = download.received
                let frame = try await link.receive(timeout: timeout, what: "state values from \(from) of \(total)")
                bytes += FrameHeader.size + frame.payload.readableBytes
                if try download.received(frame, into: state) == .complete { break }
            }
        } catch {
            await link.close()
            throw RingFailure(error, peer: link.peerDescription, round: nil)
        }
        await link.close()
        return bytes
    }
}
