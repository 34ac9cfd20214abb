package faas.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;

/**
 * Forwards 127.0.0.1:9002 (this container's own loopback, so `network: none` too) to the
 * platform's Lambda API socket: AWS_ENDPOINT_URL_LAMBDA, for an SDK that calls other functions.
 */
final class AwsRelay {
    static final int PORT = 9002;

    private AwsRelay() {}

    static void start(String path) {
        ServerSocket listener;
        try {
            listener = new ServerSocket();
            listener.setReuseAddress(true);
            listener.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), PORT), 16);
        } catch (IOException e) {
            System.err.println("faas runtime: the Lambda API forwarder cannot listen on 127.0.0.1:" + PORT + ": " + e.getMessage());
            return;
        }
        daemon(() -> {
            while (true) {
                Socket conn;
                try {
                    conn = listener.accept();
                } catch (IOException e) {
                    return;
                }
                daemon(() -> serve(conn, path));
            }
        });
    }

    private static void daemon(Runnable run) {
        Thread t = new Thread(run, "faas-aws-relay");
        t.setDaemon(true);
        t.start();
    }

    private static void serve(Socket conn, String path) {
        try (conn; SocketChannel up = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            up.connect(UnixDomainSocketAddress.of(path));
            InputStream upIn = Channels.newInputStream(up);
            OutputStream upOut = Channels.newOutputStream(up);
            Thread upward = new Thread(() -> {
                try {
                    conn.getInputStream().transferTo(upOut);
                    up.shutdownOutput();
                } catch (IOException ignored) {
                    // the other side ended
                }
            }, "faas-aws-relay-up");
            upward.setDaemon(true);
            upward.start();
            upIn.transferTo(conn.getOutputStream());
            conn.shutdownOutput();
            upward.join(60_000);
        } catch (IOException | InterruptedException ignored) {
            // a relay connection ends with either side
        }
    }
}
