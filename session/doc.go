// Package session runs lanmsg sessions over the transport package's frames:
// a Server that accepts connections and writes every message it receives to
// an output, and a Client that sends messages and waits for the server to
// confirm them.
//
// # Server
//
// The server serves each connection in its own goroutine, keeps a registry of
// live sessions (Server.Sessions) and logs the number of active sessions as it
// changes. A session ends
//
//   - on the payload "!DISCONNECT": the server writes every message of the
//     session to the output, then closes the connection normally (FIN). That
//     close is the client's delivery confirmation;
//   - on end of stream without "!DISCONNECT" (a client that vanished): the
//     session ends; no spinning on a dead socket;
//   - on a protocol error, a timeout, the session limit or shutdown: the
//     messages read so far are written to the output and the connection is
//     reset (RST), so that a client waiting for confirmation cannot mistake it
//     for one.
//
// Limits (Config): payload size, concurrent sessions, idle time between
// frames, time to complete a header once it has started, and time without
// progress inside a frame.
//
// Output is batched: a session formats the messages it has already received
// and writes them in one call when its input runs dry, so a busy session costs
// one write per batch, not per message, and a slow output slows the senders
// (back-pressure) instead of growing memory.
//
// # TLS
//
// With Config.TLS set, the server takes TLS sessions on the same port: the
// first byte of a connection (0x16, a TLS handshake record, or a digit or
// space of a header) tells which. A TLS session runs the same frames inside
// TLS 1.3 under the same limits, its handshake bounded by HeaderTimeout;
// its confirmation is close_notify and an orderly close. Config.TLSOnly
// refuses plain sessions. ClientConfig.TLS makes Dial use TLS; ErrNoTLS
// tells a server that does not speak it. PROTOCOL.md ("TLS on the same
// port") is the specification.
//
// # Client
//
// Client sends messages as frames, buffering them, then "!DISCONNECT", and
// waits for the server to close the connection: only that close confirms that
// the server read every frame. Client.Close returns nil only then.
//
// Client.Deliver runs a whole send or chat from a Source (Args, or Lines,
// which reads a stream's lines as they arrive): it sends, flushes whenever
// the input runs dry, leaves, and returns a Report (messages sent and
// confirmed) with a typed error: *InputError names the message that stopped
// the input, *ServerLeftError a chat the server ended; others wrap
// ErrNotConfirmed.
package session
