"""Free TCP ports for the servers and the stack the tests start (servers.py, table.py)."""
import random, socket


def free_port(count=1):
    """count distinct free TCP ports on 127.0.0.1, picked at random *below* the kernel's ephemeral range: the kernel
    never hands one out as the local end of an outgoing connection, so a stopped server gets its port back on
    restart. Every candidate stays bound until the last is found, so they are distinct."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            high = int(f.read().split()[0]) - 1
    except (OSError, ValueError, IndexError):
        high = 32767
    rng, held, ports = random.SystemRandom(), [], []
    try:
        for attempt in range(2000):
            if len(ports) == count:
                break
            port = rng.randint(20000, high) if high - 20000 > 100 and attempt < 1000 else 0
            if port == 25672 or port in ports:  # RabbitMQ's default distribution port
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            held.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in held:
            s.close()
    if len(ports) != count:
        raise OSError("free_port: no free port found on 127.0.0.1")
    return ports
