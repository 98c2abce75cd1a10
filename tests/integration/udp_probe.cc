// udp-probe: a host program on the other side of the VMM's gateway, for
// the integration tests. Sends N datagrams to 127.0.0.1:PORT, one at a time,
// and waits for each to come back (a guest running udp-echo= answers).
//
//   udp-probe PORT N [TIMEOUT_MS]
//
// Prints "udp-probe: N sent, M echoed" and exits 0 only if every datagram
// came back unchanged.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

bool parse(const char* s, unsigned long max, unsigned long* out) {
  const char* end = s + std::strlen(s);
  auto [p, ec] = std::from_chars(s, end, *out);
  return ec == std::errc() && p == end && *out <= max;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long port = 0, count = 0, timeout_ms = 5000;
  if (argc < 3 || argc > 4 || !parse(argv[1], 65535, &port) || port == 0 || !parse(argv[2], 100000, &count) ||
      (argc == 4 && !parse(argv[3], 600000, &timeout_ms))) {
    std::fprintf(stderr, "usage: udp-probe PORT N [TIMEOUT_MS]\n");
    return 2;
  }
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned long echoed = 0;
  for (unsigned long i = 0; i < count; ++i) {
    const std::string msg = "udp-probe datagram " + std::to_string(i);
    ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    pollfd p{fd, POLLIN, 0};
    // The first datagram may wait for the guest to boot and for ARP.
    if (::poll(&p, 1, static_cast<int>(i == 0 ? timeout_ms : 2000)) != 1) continue;
    char buf[2048];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == static_cast<ssize_t>(msg.size()) && std::memcmp(buf, msg.data(), msg.size()) == 0) ++echoed;
  }
  std::printf("udp-probe: %lu sent, %lu echoed\n", count, echoed);
  ::close(fd);
  return echoed == count ? 0 : 1;
}
