"""The Python socket tutorial's server, as a test fixture.

Usage: python3 tutorial_server.py HOST PORT   (PORT 0 picks a free port)

It keeps the tutorial's logic and its flaws on purpose (recv(64) then
recv(n), which may return short; spinning when a client vanishes), because
lanmsg must interoperate with exactly this. Changes from the tutorial: the
address comes from the command line, it prints a ready line with the bound
port, and each line is printed whole and flushed (the tutorial's print()
from several threads can interleave two lines, which tests would misread).
"""
import socket
import sys
import threading

HEADER = 64
FORMAT = "utf-8"
DISCONNECT_MESSAGE = "!DISCONNECT"
print_lock = threading.Lock()


def say(line):
    with print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def handle_client(conn, addr):
    say(f"[New Connection] : {addr} connected.")
    connected = True
    while connected:
        msg_length = conn.recv(HEADER).decode(FORMAT)
        if msg_length:
            msg_length = int(msg_length)
            msg = conn.recv(msg_length).decode(FORMAT)
            say(f"[{addr}] : {msg}")
            if msg == DISCONNECT_MESSAGE:
                connected = False
    say(f"[{addr}] : Disconnected.")
    conn.close()


def main():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((sys.argv[1], int(sys.argv[2])))
    server.listen()
    host, port = server.getsockname()
    say(f"[Starting] Server listening on {host}:{port}")
    while True:
        conn, addr = server.accept()
        thread = threading.Thread(target=handle_client, args=(conn, addr), daemon=True)
        thread.start()
        say(f"[ACTIVE CONNECTIONS] : {threading.active_count() - 1}")


if __name__ == "__main__":
    main()
