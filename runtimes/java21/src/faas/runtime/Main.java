package faas.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import com.fasterxml.jackson.databind.JavaType;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOError;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The faas java21 runtime: a Lambda Runtime API client that runs inside the container.
 *
 * <p>It speaks the same protocol as the Python and Node clients: GET /faas/v1/environment for
 * the function (handler and variables; blocks until a pre-started container is given one), then
 * Lambda's Runtime API over the unix socket the platform mounts. The handler is loaded and
 * called as Lambda's Java runtime loads and calls it (RequestHandler with POJO input and
 * output, RequestStreamHandler, or any public method named by Class::method), and errors come
 * back in Lambda's Java shape (errorMessage, errorType, stackTrace, cause).
 */
public final class Main {
    static final String RUNTIME_API = "/2018-06-01/runtime";
    static final String ENVIRONMENT_PATH = "/faas/v1/environment";
    static final String DEFAULT_SOCKET = "/run/faas/runtime.sock";
    static final int HEAP_RESTART_STATUS = 75; // tells ./bootstrap to start the JVM with another heap

    private Main() {}

    public static void main(String[] args) throws Exception {
        if (System.getenv("FAAS_CDS_DUMP") != null) { // image build: load the classes a call uses, then exit
            Warmup.run();
            return;
        }
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        System.setOut(out);
        System.setErr(out);
        String awsSocket = System.getenv("FAAS_AWS_SOCKET");
        if (awsSocket != null && !awsSocket.isEmpty()) {
            AwsRelay.start(awsSocket);
        }
        String socket = System.getenv("FAAS_RUNTIME_SOCKET");
        RuntimeClient client = new RuntimeClient(socket == null || socket.isEmpty() ? DEFAULT_SOCKET : socket);
        Handler handler;
        try {
            RuntimeClient.Response spec = client.request("GET", ENVIRONMENT_PATH, null, Map.of());
            if (spec.status != 200) {
                throw new java.io.IOException("GET " + ENVIRONMENT_PATH + " answered " + spec.status);
            }
            Map<String, Object> info = Json.MAPPER.readValue(spec.body, Json.MAP);
            Map<String, String> env = new LinkedHashMap<>();
            Object given = info.get("env");
            if (given instanceof Map<?, ?> map) {
                map.forEach((k, v) -> env.put(String.valueOf(k), String.valueOf(v)));
            }
            restartIfResized(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
            Object name = info.get("handler");
            if (name instanceof String s && !s.isEmpty()) {
                env.put("_HANDLER", s);
            }
            Environment.apply(env);
        } catch (java.io.IOException e) {
            System.err.println("faas runtime: " + e.getMessage());
            System.exit(1);
            return;
        }
        try {
            handler = Handler.load(System.getenv("_HANDLER"));
        } catch (Throwable t) {
            Map<String, Object> error = Errors.body(Errors.unwrap(t));
            Errors.log(Errors.unwrap(t), error);
            client.post(RUNTIME_API + "/init/error", Json.MAPPER.writeValueAsBytes(error),
                    Map.of("Lambda-Runtime-Function-Error-Type", String.valueOf(error.get("errorType"))));
            System.exit(1);
            return;
        }
        serve(client, handler);
    }

    /** Exit with 75 when the heap was sized for another memory than the function's (pre-started). */
    private static void restartIfResized(String memory) {
        String heapMb = System.getenv("FAAS_HEAP_MEMORY_MB");
        boolean last = "1".equals(System.getenv("FAAS_HEAP_FINAL"));
        if (heapMb != null && memory != null && !memory.equals(heapMb) && !last) {
            System.exit(HEAP_RESTART_STATUS);
        }
    }

    private static void serve(RuntimeClient client, Handler handler) throws Exception {
        String next = RUNTIME_API + "/invocation/next";
        // Faas-Direct: 2: this client uses its one connection strictly in turn and keeps what it
        // reads past a response, so the platform may send an answer together with the next event.
        Map<String, String> direct = Map.of("Faas-Direct", "2");
        while (true) {
            RuntimeClient.Response event = client.request("GET", next, null, direct);
            if (event.status != 200) {
                throw new java.io.IOException("GET " + next + " answered " + event.status);
            }
            String requestId = event.header("lambda-runtime-aws-request-id", "");
            String trace = event.header("lambda-runtime-trace-id", null);
            if (trace != null) {
                System.setProperty("com.amazonaws.xray.traceHeader", trace);
                Environment.apply(Map.of("_X_AMZN_TRACE_ID", trace));
            }
            LambdaContext context = new LambdaContext(event);
            LambdaContext.current = requestId;
            String base = RUNTIME_API + "/invocation/" + requestId;
            byte[] result = null;
            Throwable failure = null;
            try {
                result = handler.call(event.body, context);
            } catch (Throwable t) {
                failure = Errors.unwrap(t);
            }
            System.out.flush();
            if (failure == null) {
                client.post(base + "/response", result, Map.of("Content-Type", "application/json"));
                continue;
            }
            Map<String, Object> error = Errors.body(failure);
            Errors.log(failure, error);
            client.post(base + "/error", Json.MAPPER.writeValueAsBytes(error), Map.of("Lambda-Runtime-Function-Error-Type", "Unhandled"));
            if (failure instanceof VirtualMachineError || failure instanceof IOError) {
                System.exit(1); // as Lambda's Java runtime: the environment does not outlive an OutOfMemoryError
            }
        }
    }

    /** The loaded handler: how to turn an event's bytes into a call and its result into bytes. */
    static final class Handler {
        private final Object instance;
        private final Method method;
        private final Kind kind;
        private final JavaType input;

        enum Kind { STREAM, POJO }

        private Handler(Object instance, Method method, Kind kind, JavaType input) {
            this.instance = instance;
            this.method = method;
            this.kind = kind;
            this.input = input;
        }

        static Handler load(String name) throws Throwable {
            if (name == null || name.isEmpty()) {
                throw new ClassNotFoundException("No handler specified (_HANDLER is empty)");
            }
            String className = name;
            String methodName = null;
            int sep = name.indexOf("::");
            if (sep >= 0) {
                className = name.substring(0, sep);
                methodName = name.substring(sep + 2);
            }
            ClassLoader loader = taskClassLoader();
            Thread.currentThread().setContextClassLoader(loader);
            Class<?> cls;
            try {
                cls = Class.forName(className, true, loader);
            } catch (ClassNotFoundException e) {
                throw new ClassNotFoundException("Class not found: " + className, e);
            }
            if (methodName == null) {
                if (RequestStreamHandler.class.isAssignableFrom(cls)) {
                    Method m = RequestStreamHandler.class.getMethod("handleRequest", java.io.InputStream.class, java.io.OutputStream.class, Context.class);
                    return new Handler(newInstance(cls), m, Kind.STREAM, null);
                }
                if (RequestHandler.class.isAssignableFrom(cls)) {
                    Method m = pojoMethod(cls, "handleRequest");
                    if (m == null) {
                        m = RequestHandler.class.getMethod("handleRequest", Object.class, Context.class);
                    }
                    return new Handler(newInstance(cls), m, Kind.POJO, Json.MAPPER.constructType(m.getGenericParameterTypes()[0]));
                }
                throw new NoSuchMethodException("Class " + className + " does not implement RequestHandler or RequestStreamHandler");
            }
            for (Method m : cls.getMethods()) { // (InputStream, OutputStream[, Context]) first, as Lambda looks
                Class<?>[] p = m.getParameterTypes();
                if (m.getName().equals(methodName) && p.length >= 2 && p[0] == java.io.InputStream.class && p[1] == java.io.OutputStream.class
                        && (p.length == 2 || p.length == 3 && p[2] == Context.class)) {
                    return new Handler(instanceFor(cls, m), m, Kind.STREAM, null);
                }
            }
            Method m = pojoMethod(cls, methodName);
            if (m == null) {
                throw new NoSuchMethodException("No public method named " + methodName + " with appropriate method signature found on class " + className);
            }
            JavaType in = m.getParameterCount() == 0 || m.getParameterTypes()[0] == Context.class ? null : Json.MAPPER.constructType(m.getGenericParameterTypes()[0]);
            return new Handler(instanceFor(cls, m), m, Kind.POJO, in);
        }

        /** The public method name(input[, Context]) or name([Context]), not a bridge; the most parameters wins. */
        private static Method pojoMethod(Class<?> cls, String name) {
            Method best = null;
            for (Method m : cls.getMethods()) {
                Class<?>[] p = m.getParameterTypes();
                if (!m.getName().equals(name) || m.isBridge() || p.length > 2) {
                    continue;
                }
                if (p.length == 2 && p[1] != Context.class) {
                    continue;
                }
                if (best == null || p.length > best.getParameterCount()) {
                    best = m;
                }
            }
            return best;
        }

        private static Object instanceFor(Class<?> cls, Method m) throws Throwable {
            return Modifier.isStatic(m.getModifiers()) ? null : newInstance(cls);
        }

        private static Object newInstance(Class<?> cls) throws Throwable {
            try {
                return cls.getDeclaredConstructor().newInstance();
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        }

        /** /var/task (classes), /var/task/lib/*.jar, then the layers' /opt/java/lib/*.jar, as on Lambda. */
        private static ClassLoader taskClassLoader() throws Exception {
            String root = System.getenv("LAMBDA_TASK_ROOT");
            File task = new File(root == null || root.isEmpty() ? "/var/task" : root);
            List<URL> urls = new ArrayList<>();
            urls.add(task.toURI().toURL());
            for (File dir : new File[] {new File(task, "lib"), new File("/opt/java/lib")}) {
                File[] jars = dir.listFiles((d, n) -> n.endsWith(".jar"));
                if (jars != null) {
                    Arrays.sort(jars);
                    for (File jar : jars) {
                        urls.add(jar.toURI().toURL());
                    }
                }
            }
            return new URLClassLoader(urls.toArray(new URL[0]), Main.class.getClassLoader());
        }

        byte[] call(byte[] event, Context context) throws Throwable {
            try {
                if (kind == Kind.STREAM) {
                    ByteArrayOutputStream output = new ByteArrayOutputStream();
                    Object[] args = method.getParameterCount() == 2
                            ? new Object[] {new ByteArrayInputStream(event), output}
                            : new Object[] {new ByteArrayInputStream(event), output, context};
                    method.invoke(instance, args);
                    return output.toByteArray();
                }
                Object[] args = new Object[method.getParameterCount()];
                int i = 0;
                if (input != null) {
                    try {
                        args[i++] = event.length == 0 ? null : Json.MAPPER.readValue(event, input);
                    } catch (java.io.IOException e) {
                        throw new Errors.Fault("Runtime.UnmarshalError", "Unable to unmarshal input: " + Errors.firstLine(e.getMessage()));
                    }
                }
                if (i < args.length) {
                    args[i] = context;
                }
                Object result = method.invoke(instance, args);
                try {
                    return Json.MAPPER.writeValueAsBytes(result);
                } catch (java.io.IOException e) {
                    throw new Errors.Fault("Runtime.MarshalError", "Unable to marshal response: " + e.getMessage());
                }
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        }
    }
}
