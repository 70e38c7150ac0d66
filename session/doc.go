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
// # Client
//
// Client sends messages as frames, buffering them, then "!DISCONNECT", and
// waits for the server to close the connection: only that close confirms that
// the server read every frame. Client.Close returns nil only then.
package session
