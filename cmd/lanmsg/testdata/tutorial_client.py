"""The Python socket tutorial's client, as a test fixture.

Usage: python3 tutorial_client.py HOST:PORT MESSAGE...
       python3 tutorial_client.py HOST:PORT --size N   (one message of N 'x')

Like the tutorial, it sends each message as two send() calls (the padded
length header, then the UTF-8 bytes), then !DISCONNECT, and exits without
reading anything.
"""
import socket
import sys

HEADER = 64
FORMAT = "utf-8"
DISCONNECT_MESSAGE = "!DISCONNECT"


def main():
    host, _, port = sys.argv[1].rpartition(":")
    messages = sys.argv[2:]
    if messages[:1] == ["--size"]:
        messages = ["x" * int(messages[1])]
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.connect((host, int(port)))

    def send(msg):
        message = msg.encode(FORMAT)
        send_length = str(len(message)).encode(FORMAT)
        send_length += b" " * (HEADER - len(send_length))
        client.sendall(send_length)
        client.sendall(message)

    for m in messages:
        send(m)
    send(DISCONNECT_MESSAGE)


if __name__ == "__main__":
    main()
