from tests.protocol.helpers import (ServerTestCase, connect, exchange,
                                    make_server)


class BasicProtocolTests(ServerTestCase):
    def test_set_get_pipelined(self):
        data = (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        self.assertEqual(exchange(self.proto, self.transport, data),
                         b"+OK\r\n$1\r\nv\r\n")

    def test_one_write_per_batch(self):
        writes = []
        self.proto.client.write = writes.append
        self.proto.dataReceived(b"PING\r\nPING\r\nPING\r\n")
        self.assertEqual(writes, [b"+PONG\r\n+PONG\r\n+PONG\r\n"])

    def test_unknown_command(self):
        self.assertEqual(
            exchange(self.proto, self.transport, b"*2\r\n$3\r\nFOO\r\n$3\r\nbar\r\n"),
            b"-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n")

    def test_arity(self):
        self.assertEqual(
            exchange(self.proto, self.transport, b"*1\r\n$3\r\nGET\r\n"),
            b"-ERR wrong number of arguments for 'get' command\r\n")

    def test_clusterdown_without_cluster_layer(self):
        server, _ = make_server(cluster_enabled="yes")
        proto, transport = connect(server)
        self.assertEqual(exchange(proto, transport, b"GET k\r\n"),
                         b"-CLUSTERDOWN Hash slot not served\r\n")
        self.assertEqual(exchange(proto, transport, b"PING\r\n"), b"+PONG\r\n")
