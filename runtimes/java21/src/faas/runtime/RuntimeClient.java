package faas.runtime;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A minimal keep-alive HTTP/1.1 client on one unix socket connection (Content-Length and
 * chunked bodies). The buffered reader keeps bytes read past a response, which is what
 * Faas-Direct: 2 promises the platform.
 */
final class RuntimeClient {
    private static final long CONNECT_WAIT_MS = 5000; // the platform creates the socket before the container starts
    private final String path;
    private SocketChannel channel;
    private InputStream in;
    private OutputStream out;

    static final class Response {
        final int status;
        final Map<String, String> headers;
        final byte[] body;

        Response(int status, Map<String, String> headers, byte[] body) {
            this.status = status;
            this.headers = headers;
            this.body = body;
        }

        String header(String name, String otherwise) {
            return headers.getOrDefault(name, otherwise);
        }
    }

    RuntimeClient(String path) {
        this.path = path;
    }

    private void connect() throws IOException {
        long deadline = System.currentTimeMillis() + CONNECT_WAIT_MS;
        while (true) {
            SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(path));
                channel = ch;
                in = new BufferedInputStream(Channels.newInputStream(ch), 65536);
                out = Channels.newOutputStream(ch);
                return;
            } catch (IOException e) {
                ch.close();
                if (System.currentTimeMillis() > deadline) {
                    throw new IOException("cannot connect to the Runtime API at " + path + ": " + e.getMessage(), e);
                }
                try {
                    Thread.sleep(5);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted", ie);
                }
            }
        }
    }

    private void close() {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // closing anyway
            }
            channel = null;
        }
    }

    Response post(String target, byte[] body, Map<String, String> headers) throws IOException {
        return request("POST", target, body == null ? new byte[0] : body, headers);
    }

    Response request(String method, String target, byte[] body, Map<String, String> headers) throws IOException {
        StringBuilder head = new StringBuilder(256);
        head.append(method).append(' ').append(target).append(" HTTP/1.1\r\nHost: localhost\r\n");
        headers.forEach((k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
        if (!"GET".equals(method)) {
            head.append("Content-Length: ").append(body.length).append("\r\n");
        }
        head.append("\r\n");
        byte[] headBytes = head.toString().getBytes(StandardCharsets.ISO_8859_1);
        for (int attempt = 0; ; attempt++) {
            boolean reused = channel != null;
            if (!reused) {
                connect();
            }
            try {
                if (body != null && body.length > 0 && body.length < 16384) {
                    byte[] all = new byte[headBytes.length + body.length];
                    System.arraycopy(headBytes, 0, all, 0, headBytes.length);
                    System.arraycopy(body, 0, all, headBytes.length, body.length);
                    out.write(all);
                } else {
                    out.write(headBytes);
                    if (body != null && body.length > 0) {
                        out.write(body);
                    }
                }
                out.flush();
                return response();
            } catch (IOException e) {
                close(); // the platform may have closed an idle kept-alive connection: one retry
                if (attempt > 0 || !reused) {
                    throw new IOException("Runtime API " + method + " " + target + " failed: " + e.getMessage(), e);
                }
            }
        }
    }

    private String readLine() throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream(128);
        while (true) {
            int b = in.read();
            if (b < 0) {
                throw new EOFException("the Runtime API closed the connection");
            }
            if (b == '\n') {
                byte[] bytes = line.toByteArray();
                int n = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                return new String(bytes, 0, n, StandardCharsets.ISO_8859_1);
            }
            line.write(b);
        }
    }

    private byte[] readExact(int n) throws IOException {
        byte[] out = in.readNBytes(n);
        if (out.length != n) {
            throw new EOFException("the Runtime API closed the connection mid-body");
        }
        return out;
    }

    private Response response() throws IOException {
        while (true) {
            String[] status = readLine().split(" ", 3);
            int code = Integer.parseInt(status[1]);
            Map<String, String> headers = new HashMap<>();
            for (String line = readLine(); !line.isEmpty(); line = readLine()) {
                int colon = line.indexOf(':');
                if (colon > 0) {
                    headers.put(line.substring(0, colon).trim().toLowerCase(Locale.ROOT), line.substring(colon + 1).trim());
                }
            }
            if (code < 200) {
                continue;
            }
            byte[] body;
            if (code == 204 || code == 304) {
                body = new byte[0];
            } else if (headers.containsKey("content-length")) {
                body = readExact(Integer.parseInt(headers.get("content-length")));
            } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
                ByteArrayOutputStream all = new ByteArrayOutputStream();
                while (true) {
                    int size = Integer.parseInt(readLine().split(";", 2)[0].trim(), 16);
                    if (size == 0) {
                        while (!readLine().isEmpty()) {
                            // trailers
                        }
                        break;
                    }
                    all.write(readExact(size));
                    readLine();
                }
                body = all.toByteArray();
            } else {
                body = in.readAllBytes();
                close();
                return new Response(code, headers, body);
            }
            if ("close".equalsIgnoreCase(headers.get("connection"))) {
                close();
            }
            return new Response(code, headers, body);
        }
    }
}
