"""python-zeroconf fixture for the discovery interop tests (run with /usr/bin/python3).

  zc.py register IP INSTANCE PORT   register INSTANCE._lanmsg._tcp.local. (host pyhost.local.),
                                   print READY, serve until stdin closes
  zc.py browse IP SECONDS [WANT]    browse _lanmsg._tcp.local., print FOUND <json> per resolved
                                   instance, then DONE (at once after finding instance WANT)
"""
import json
import socket
import sys
import threading

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, Zeroconf

TYPE = "_lanmsg._tcp.local."


def main():
    mode, ip = sys.argv[1], sys.argv[2]
    zc = Zeroconf(interfaces=[ip], ip_version=IPVersion.V4Only)
    try:
        if mode == "register":
            name, port = sys.argv[3], int(sys.argv[4])
            info = ServiceInfo(TYPE, name + "." + TYPE, addresses=[socket.inet_aton(ip)], port=port,
                               properties={"v": "1", "impl": "zeroconf"}, server="pyhost.local.")
            zc.register_service(info)
            print("READY", flush=True)
            sys.stdin.read()
            zc.unregister_service(info)
        elif mode == "browse":
            seconds = float(sys.argv[3])
            want = sys.argv[4] + "." + TYPE if len(sys.argv) > 4 else None
            seen = set()
            done = threading.Event()

            class Listener:
                def add_service(self, zc, type_, name):
                    if name in seen:
                        return
                    info = zc.get_service_info(type_, name, timeout=3000)
                    if info is None:
                        print("UNRESOLVED", name, flush=True)
                        return
                    seen.add(name)
                    print("FOUND", json.dumps({
                        "name": name, "port": info.port, "server": info.server,
                        "addresses": info.parsed_addresses(),
                        "properties": {k.decode(): (v or b"").decode() for k, v in info.properties.items()},
                    }), flush=True)
                    if name == want:
                        done.set()

                def update_service(self, zc, type_, name):
                    pass

                def remove_service(self, zc, type_, name):
                    pass

            ServiceBrowser(zc, TYPE, Listener())
            done.wait(seconds)
            print("DONE", flush=True)
    finally:
        zc.close()


if __name__ == "__main__":
    main()
