package dev.sylph.launcher;

import com.amazonaws.lambda.thirdparty.com.fasterxml.jackson.databind.ObjectMapper;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import com.amazonaws.services.lambda.runtime.api.client.AWSLambda;
import com.amazonaws.services.lambda.runtime.api.client.EventHandlerLoader;
import com.amazonaws.services.lambda.runtime.api.client.HandlerInfo;
import com.amazonaws.services.lambda.runtime.api.client.PojoSerializerLoader;
import com.amazonaws.services.lambda.runtime.api.client.runtimeapi.JniHelper;
import com.amazonaws.services.lambda.runtime.serialization.PojoSerializer;
import com.amazonaws.services.lambda.runtime.serialization.events.LambdaEventSerializers;
import com.amazonaws.services.lambda.runtime.serialization.factories.JacksonFactory;
import com.amazonaws.services.lambda.runtime.serialization.util.SerializeUtil;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TimeZone;

/**
 * Sylph's launcher for pre-started Java runtimes.
 *
 * <p>The JVM is started before Sylph knows which function it will run. The launcher warms the
 * runtime interface client's (RIC's) handler loading and its shaded Jackson on dummy handlers, in a
 * throwaway class loader and on a throwaway thread, without initialising any class whose static
 * initialiser reads the environment ({@code AWSLambda}, {@code LambdaEnvironment}). It then tells
 * Sylph it is ready on fd 0 (a Unix socket), waits for the function's environment and code
 * directory, installs them, and hands over to the unchanged RIC ({@code AWSLambda.main}).
 *
 * <p>Protocol on fd 0, frames = u32 little-endian length + payload:
 * launcher sends {@code "W"} (ready); Sylph sends {@code "S" + {"env":{...},"cwd":"..."}}.
 *
 * <p>Needs {@code --add-opens java.base/java.lang=ALL-UNNAMED} (to replace the environment).
 *
 * <p>System properties: {@code sylph.warmup} (default true), {@code sylph.warmup.classpath}
 * (path-separated jars for the warm-up loader: aws-lambda-java-events and joda-time),
 * {@code sylph.warmup.rounds} (default 3), {@code sylph.launcher.debug} (timings on stderr).
 */
public final class Launcher {
    private static final boolean DEBUG = Boolean.getBoolean("sylph.launcher.debug");
    private static final String WARM_PACKAGE = "dev.sylph.launcher.warm.";

    /** Kept reachable so that the streams on fd 0 are never collected or closed. */
    private static FileInputStream control;
    private static FileOutputStream controlOut;

    private Launcher() {
    }

    public static void main(String[] args) throws Throwable {
        long t0 = System.nanoTime();
        if (!"false".equals(System.getProperty("sylph.warmup"))) {
            warmUpOnOwnThread();
            warmCrypto();
            String preload = System.getProperty("sylph.preload");
            if (preload != null && !preload.isEmpty()) {
                long t = System.nanoTime();
                int clients = warmAwsSdkClients(new File(preload));
                debug("warmed %d AWS SDK clients of the package in %.1f ms", clients, (System.nanoTime() - t) / 1e6);
            }
        }
        long t1 = System.nanoTime();
        debug("warm-up took %.1f ms", (t1 - t0) / 1e6);

        control = new FileInputStream(FileDescriptor.in);
        controlOut = new FileOutputStream(FileDescriptor.in);
        controlOut.write(new byte[] {1, 0, 0, 0, 'W'});
        controlOut.flush();

        byte[] frame = readFrame(control);
        long t2 = System.nanoTime();
        if (frame.length == 0 || frame[0] != 'S') {
            die("expected a Start frame ('S'), got " + (frame.length == 0 ? "an empty frame" : "type " + frame[0]));
        }
        String json = new String(frame, 1, frame.length - 1, StandardCharsets.UTF_8);
        // The RIC's own (shaded) Jackson: already loaded and warmed.
        Object parsed = new ObjectMapper().readValue(json, Object.class);
        if (!(parsed instanceof Map)) {
            die("Start frame is not a JSON object");
        }
        Map<?, ?> start = (Map<?, ?>) parsed;
        Object envObj = start.get("env");
        if (!(envObj instanceof Map)) {
            die("Start frame has no \"env\" object");
        }
        Map<String, String> env = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) envObj).entrySet()) {
            if (!(e.getValue() instanceof String)) {
                die("env value of " + e.getKey() + " is not a string");
            }
            env.put((String) e.getKey(), (String) e.getValue());
        }
        Object cwd = start.get("cwd");

        installEnvironment(env);
        if (cwd instanceof String) {
            // The RIC takes the task root from user.dir (CustomerClassLoader: <user.dir>/, <user.dir>/lib/*.jar).
            System.setProperty("user.dir", (String) cwd);
        }
        applyTimeZone(env.get("TZ"));
        // User code must not read Sylph's control socket through System.in.
        System.setIn(new ByteArrayInputStream(new byte[0]));

        String handler = env.get("_HANDLER");
        if (handler == null || handler.isEmpty()) {
            die("_HANDLER is not set in the function's environment");
        }
        debug("start frame handled in %.1f ms, handing over to the RIC with handler %s",
                (System.nanoTime() - t2) / 1e6, handler);
        AWSLambda.main(new String[] {handler});
    }

    // ---------------------------------------------------------------- warm-up

    private static void warmUpOnOwnThread() throws InterruptedException {
        // Its own thread: EventHandlerLoader caches serializers per thread (ThreadLocal), so nothing the
        // warm-up builds is found again by the RIC's loop on the main thread.
        Thread t = new Thread(() -> {
            try {
                warmUp();
            } catch (Throwable e) {
                System.err.println("sylph launcher: warm-up failed (continuing cold): " + e);
                if (DEBUG) {
                    e.printStackTrace();
                }
            }
        }, "sylph-warmup");
        t.start();
        t.join();
    }

    private static void warmUp() throws Exception {
        List<URL> urls = new ArrayList<>();
        urls.add(Launcher.class.getProtectionDomain().getCodeSource().getLocation());
        String extra = System.getProperty("sylph.warmup.classpath", "");
        for (String p : extra.split(File.pathSeparator)) {
            if (!p.isEmpty()) {
                urls.add(new File(p).toURI().toURL());
            }
        }
        ClassLoader loader = new WarmLoader(urls.toArray(new URL[0]), ClassLoader.getSystemClassLoader());
        Thread.currentThread().setContextClassLoader(loader);

        // Loads the JNI Runtime API client library now (reads only its system property; no env).
        long t = System.nanoTime();
        JniHelper.load();
        debug("  JNI library loaded in %.1f ms", (System.nanoTime() - t) / 1e6);

        t = System.nanoTime();
        int n = preloadRuntimeClasses();
        debug("  %d RIC classes loaded in %.1f ms", n, (System.nanoTime() - t) / 1e6);

        // PojoSerializerLoader looks for a CustomPojoSerializer through AWSLambda.getCustomerClassLoader(),
        // which would run AWSLambda's static initialiser (it reads the environment). Pretend that lookup
        // was done, and undo it afterwards so that the function's own service file is honoured.
        Field initialized = PojoSerializerLoader.class.getDeclaredField("initialized");
        Field custom = PojoSerializerLoader.class.getDeclaredField("customPojoSerializer");
        initialized.setAccessible(true);
        custom.setAccessible(true);
        initialized.setBoolean(null, true);
        try {
            Context context = (Context) loader.loadClass(WARM_PACKAGE + "WarmContext")
                    .getDeclaredConstructor().newInstance();
            int rounds = Integer.getInteger("sylph.warmup.rounds", 3);
            for (int i = 0; i < rounds; i++) {
                t = System.nanoTime();
                warmHandler(loader, context, WARM_PACKAGE + "MapHandler", MAP_SAMPLE);
                warmHandler(loader, context, WARM_PACKAGE + "PojoHandler::handle", POJO_SAMPLE);
                warmHandler(loader, context, WARM_PACKAGE + "StreamHandler", MAP_SAMPLE);
                debug("  handlers round %d: %.1f ms", i, (System.nanoTime() - t) / 1e6);
            }
            for (int i = 0; i < rounds; i++) {
                t = System.nanoTime();
                warmEvents(loader);
                debug("  events round %d: %.1f ms", i, (System.nanoTime() - t) / 1e6);
            }
        } finally {
            initialized.setBoolean(null, false);
            custom.set(null, null);
            // SerializeUtil caches "customer" classes (org.joda.time.DateTime, nested event classes) by
            // name only, whatever their loader: forget the warm-up loader's copies.
            Field cached = SerializeUtil.class.getDeclaredField("cachedClasses");
            cached.setAccessible(true);
            ((Map<?, ?>) cached.get(null)).clear();
        }
    }

    /**
     * Loads every class of the RIC's api.client packages, and initialises all of them but the two whose
     * static initialisers read the environment (AWSLambda, LambdaEnvironment), which are only loaded.
     * Also initialises java.security.Security (AWSLambda's initialiser sets security properties).
     */
    /**
     * The JDK's crypto providers initialise on first use (every AWS SDK signs each request with
     * HMAC-SHA256): that costs tens of milliseconds and reads no environment.
     */
    private static void warmCrypto() {
        try {
            java.security.MessageDigest.getInstance("SHA-256").digest(new byte[] {1});
            javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
            mac.init(new javax.crypto.spec.SecretKeySpec(new byte[] {1}, "HmacSHA256"));
            mac.doFinal(new byte[] {1});
        } catch (Exception e) {
            debug("crypto warm-up failed: %s", e);
        }
    }

    /**
     * The AWS SDK for Java v2 a function bundles is most of its cold start: building a client and
     * making its first call load and initialise thousands of classes and run them for the first
     * time. For each service client in the package ({@code software.amazon.awssdk.services.X.YClient}
     * in {@code lib/*.jar}), build one with a fixed region, placeholder credentials and an endpoint
     * served by this JVM itself on loopback, answering every request with an empty JSON object,
     * and make a few calls of its first operation that takes no argument: marshalling, signing,
     * the HTTP exchange and unmarshalling all run. Nothing is cached for the function: it builds
     * its own client from its own environment (the default credential chain, which would look
     * for credentials now, is left alone). Reflection only: the launcher does not depend on the SDK.
     */
    private static int warmAwsSdkClients(File root) {
        File[] lib = new File(root, "lib").listFiles((d, name) -> name.endsWith(".jar"));
        if (lib == null) {
            return 0;
        }
        com.sun.net.httpserver.HttpServer server;
        try {
            server = com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        } catch (IOException e) {
            debug("no loopback endpoint for the SDK warm-up: %s", e);
            return 0;
        }
        server.createContext("/", exchange -> {
            exchange.getRequestBody().readAllBytes();
            byte[] body = "{}".getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().add("Content-Type", "application/x-amz-json-1.0");
            exchange.getResponseHeaders().add("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000");
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.start();
        try {
            String endpoint = "http://127.0.0.1:" + server.getAddress().getPort();
            return warmAwsSdkClients(lib, endpoint);
        } finally {
            server.stop(0);
        }
    }

    private static int warmAwsSdkClients(File[] lib, String endpoint) {
        ClassLoader sys = ClassLoader.getSystemClassLoader();
        int warmed = 0;
        for (File jarFile : lib) {
            List<String> clients = new ArrayList<>();
            try (java.util.jar.JarFile jar = new java.util.jar.JarFile(jarFile)) {
                for (java.util.Enumeration<java.util.jar.JarEntry> e = jar.entries(); e.hasMoreElements(); ) {
                    String entry = e.nextElement().getName();
                    // software/amazon/awssdk/services/dynamodb/DynamoDbClient.class
                    String[] parts = entry.split("/");
                    if (parts.length == 6 && entry.startsWith("software/amazon/awssdk/services/")
                            && parts[5].endsWith("Client.class") && !parts[5].endsWith("AsyncClient.class")
                            && !parts[5].startsWith("Default")) {
                        clients.add(entry.substring(0, entry.length() - 6).replace('/', '.'));
                    }
                }
            } catch (IOException e) {
                continue;
            }
            for (String client : clients) {
                try {
                    warmAwsSdkClient(sys, client, endpoint);
                    warmed++;
                } catch (Throwable e) {
                    debug("cannot warm %s: %s", client, e);
                }
            }
        }
        return warmed;
    }

    private static void warmAwsSdkClient(ClassLoader sys, String clientName, String endpoint) throws Exception {
        Class<?> clientType = Class.forName(clientName, true, sys);
        if (!clientType.isInterface()) {
            return;
        }
        Class<?> regionType = Class.forName("software.amazon.awssdk.regions.Region", true, sys);
        Class<?> providerType = Class.forName("software.amazon.awssdk.auth.credentials.AwsCredentialsProvider", true, sys);
        Class<?> basicType = Class.forName("software.amazon.awssdk.auth.credentials.AwsBasicCredentials", true, sys);
        Class<?> staticType = Class.forName("software.amazon.awssdk.auth.credentials.StaticCredentialsProvider", true, sys);
        Class<?> credentialsType = Class.forName("software.amazon.awssdk.auth.credentials.AwsCredentials", true, sys);
        Object region = regionType.getMethod("of", String.class).invoke(null, "us-east-1");
        Object credentials = basicType.getMethod("create", String.class, String.class).invoke(null, "warm", "warm");
        Object provider = staticType.getMethod("create", credentialsType).invoke(null, credentials);
        for (int round = 0; round < 3; round++) {
            Method builderMethod = clientType.getMethod("builder");
            Object builder = builderMethod.invoke(null);
            Class<?> builderType = builderMethod.getReturnType();
            builderType.getMethod("region", regionType).invoke(builder, region);
            builderType.getMethod("credentialsProvider", providerType).invoke(builder, provider);
            builderType.getMethod("endpointOverride", java.net.URI.class)
                    .invoke(builder, java.net.URI.create(endpoint));
            Object client = builderType.getMethod("build").invoke(builder);
            try {
                for (Method m : clientType.getMethods()) {
                    // An API call (its answer is a `…Response`), not a waiter or a paginator.
                    if (m.getParameterCount() == 0 && m.isDefault()
                            && m.getReturnType().getSimpleName().endsWith("Response")) {
                        try {
                            m.invoke(client);
                        } catch (java.lang.reflect.InvocationTargetException e) {
                            // An operation whose answer is not an empty object: warm all the same.
                            debug("warm call %s.%s: %s", clientName, m.getName(), e.getCause());
                        }
                        break;
                    }
                }
            } finally {
                ((AutoCloseable) client).close();
            }
        }
        // The function builds its client from the environment: region and endpoint from the
        // variables every function of the service shares (the same here), credentials from its
        // own. Build one that way, without calling it (the default credential chain resolves
        // nothing until a call), and ask the environment-variable provider once (this JVM has
        // no credentials yet: it fails, having loaded what it needs).
        try {
            ((AutoCloseable) clientType.getMethod("create").invoke(null)).close();
        } catch (Throwable e) {
            debug("cannot build %s from the environment: %s", clientName, e);
        }
        try {
            Object envProvider = Class.forName(
                    "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider", true, sys)
                    .getMethod("create").invoke(null);
            providerType.getMethod("resolveCredentials").invoke(envProvider);
        } catch (Throwable expected) {
            // No credentials in a pre-started JVM's environment.
        }
    }

    private static int preloadRuntimeClasses() throws IOException {
        java.security.Security.getProperty("jdk.tls.disabledAlgorithms");
        ClassLoader sys = ClassLoader.getSystemClassLoader();
        String prefix = "com/amazonaws/services/lambda/runtime/api/client/";
        int n = 0;
        URL ric = AWSLambda.class.getProtectionDomain().getCodeSource().getLocation();
        try (java.util.jar.JarFile jar = new java.util.jar.JarFile(new File(ric.getPath()))) {
            for (java.util.Enumeration<java.util.jar.JarEntry> e = jar.entries(); e.hasMoreElements(); ) {
                String entry = e.nextElement().getName();
                if (!entry.startsWith(prefix) || !entry.endsWith(".class")) {
                    continue;
                }
                String name = entry.substring(0, entry.length() - 6).replace('/', '.');
                boolean init = !name.equals(AWSLambda.class.getName())
                        && !name.equals(prefix.replace('/', '.') + "LambdaEnvironment")
                        && !name.equals(prefix.replace('/', '.') + "ClasspathLoader");
                try {
                    Class.forName(name, init, sys);
                    n++;
                } catch (Throwable ignored) {
                    // e.g. optional classes; the RIC will report real problems itself
                }
            }
        }
        return n;
    }

    /** Loads a dummy handler through the RIC's own path and runs one request through its serializers. */
    private static void warmHandler(ClassLoader loader, Context context, String handler, String payload)
            throws Exception {
        HandlerInfo info = HandlerInfo.fromString(handler, loader);
        Object wrapped = EventHandlerLoader.loadEventHandler(info);
        // The wrapper's call() reads LambdaEnvironment (env-reading statics), so call the
        // RequestStreamHandler it wraps instead: for POJO handlers that is the RIC's
        // PojoHandlerAsStreamHandler, which does the JSON work.
        RequestStreamHandler inner = null;
        for (Field f : wrapped.getClass().getDeclaredFields()) {
            if (RequestStreamHandler.class.isAssignableFrom(f.getType())) {
                f.setAccessible(true);
                inner = (RequestStreamHandler) f.get(wrapped);
            }
        }
        if (inner == null) {
            throw new IllegalStateException("cannot unwrap " + wrapped.getClass().getName() + " for " + handler);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        inner.handleRequest(new ByteArrayInputStream(payload.getBytes(StandardCharsets.UTF_8)), out, context);
        if (out.size() == 0) {
            throw new IllegalStateException("no output from " + handler);
        }
    }

    /**
     * Runs aws-lambda-java-events samples through the serialization library's event serializers, on a
     * copy of the global ObjectMapper: serializerFor() registers modules on the global mapper (one
     * bound to the given class loader, registered once), which must be left for the function's loader.
     */
    @SuppressWarnings("unchecked")
    private static void warmEvents(ClassLoader loader) throws Exception {
        JacksonFactory factory = JacksonFactory.getInstance();
        Field mapperField = JacksonFactory.class.getDeclaredField("mapper");
        mapperField.setAccessible(true);
        ObjectMapper global = (ObjectMapper) mapperField.get(factory);
        mapperField.set(factory, global.copy());
        try {
            for (String[] sample : EVENT_SAMPLES) {
                Class<?> type;
                try {
                    type = Class.forName(sample[0], false, loader);
                } catch (ClassNotFoundException e) {
                    debug("  no %s on the warm-up class path, skipped", sample[0]);
                    continue;
                }
                PojoSerializer<Object> s = (PojoSerializer<Object>) LambdaEventSerializers.serializerFor(type, loader);
                Object value = s.fromJson(new ByteArrayInputStream(sample[1].getBytes(StandardCharsets.UTF_8)));
                s.toJson(value, new ByteArrayOutputStream());
            }
        } finally {
            mapperField.set(factory, global);
        }
    }

    /** Finds the warm-up dummies here first, even though the launcher jar is also on the class path. */
    private static final class WarmLoader extends URLClassLoader {
        WarmLoader(URL[] urls, ClassLoader parent) {
            super(urls, parent);
        }

        @Override
        protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
            if (!name.startsWith(WARM_PACKAGE)) {
                return super.loadClass(name, resolve);
            }
            synchronized (getClassLoadingLock(name)) {
                Class<?> c = findLoadedClass(name);
                if (c == null) {
                    c = findClass(name);
                }
                if (resolve) {
                    resolveClass(c);
                }
                return c;
            }
        }
    }

    private static final String MAP_SAMPLE = "{\"name\":\"warm\",\"count\":3,\"ratio\":0.5,\"ok\":true,"
            + "\"nothing\":null,\"items\":[1,2,{\"a\":\"b\"}],\"nested\":{\"x\":[\"y\",\"z\"]}}";
    private static final String POJO_SAMPLE = "{\"id\":\"o-1\",\"createdAt\":1700000000000,"
            + "\"items\":[{\"name\":\"a\",\"count\":2,\"price\":1.5,\"active\":true},"
            + "{\"name\":\"b\",\"count\":1,\"price\":2.25,\"active\":false}],\"tags\":{\"k\":\"v\"},\"extra\":1}";
    private static final String EV = "com.amazonaws.services.lambda.runtime.events.";
    private static final String[][] EVENT_SAMPLES = {
        {EV + "APIGatewayProxyRequestEvent", "{\"resource\":\"/{proxy+}\",\"path\":\"/hello\",\"httpMethod\":\"POST\","
            + "\"headers\":{\"content-type\":\"application/json\"},\"multiValueHeaders\":{\"accept\":[\"*/*\"]},"
            + "\"queryStringParameters\":{\"a\":\"1\"},\"multiValueQueryStringParameters\":{\"a\":[\"1\"]},"
            + "\"pathParameters\":{\"proxy\":\"hello\"},\"stageVariables\":null,"
            + "\"requestContext\":{\"accountId\":\"123456789012\",\"resourceId\":\"r\",\"stage\":\"prod\","
            + "\"requestId\":\"id\",\"identity\":{\"sourceIp\":\"127.0.0.1\",\"userAgent\":\"curl\"},"
            + "\"resourcePath\":\"/{proxy+}\",\"httpMethod\":\"POST\",\"apiId\":\"api\",\"requestTimeEpoch\":1583348638390},"
            + "\"body\":\"{}\",\"isBase64Encoded\":false}"},
        {EV + "APIGatewayProxyResponseEvent", "{\"statusCode\":200,\"headers\":{\"content-type\":\"text/plain\"},"
            + "\"multiValueHeaders\":{\"x\":[\"1\"]},\"body\":\"ok\",\"isBase64Encoded\":false}"},
        {EV + "APIGatewayV2HTTPEvent", "{\"version\":\"2.0\",\"routeKey\":\"$default\",\"rawPath\":\"/hello\","
            + "\"rawQueryString\":\"a=1\",\"cookies\":[\"c=1\"],\"headers\":{\"host\":\"localhost\"},"
            + "\"queryStringParameters\":{\"a\":\"1\"},\"requestContext\":{\"accountId\":\"123456789012\","
            + "\"apiId\":\"api\",\"domainName\":\"localhost\",\"domainPrefix\":\"localhost\",\"http\":{\"method\":\"GET\","
            + "\"path\":\"/hello\",\"protocol\":\"HTTP/1.1\",\"sourceIp\":\"127.0.0.1\",\"userAgent\":\"curl\"},"
            + "\"requestId\":\"id\",\"routeKey\":\"$default\",\"stage\":\"$default\","
            + "\"time\":\"12/Mar/2020:19:03:58 +0000\",\"timeEpoch\":1583348638390},\"body\":\"\",\"isBase64Encoded\":false}"},
        {EV + "APIGatewayV2HTTPResponse", "{\"statusCode\":200,\"headers\":{\"content-type\":\"text/plain\"},"
            + "\"cookies\":[\"c=1\"],\"body\":\"ok\",\"isBase64Encoded\":false}"},
        {EV + "SQSEvent", "{\"Records\":[{\"messageId\":\"m\",\"receiptHandle\":\"h\",\"body\":\"b\","
            + "\"attributes\":{\"ApproximateReceiveCount\":\"1\"},\"messageAttributes\":{},\"md5OfBody\":\"x\","
            + "\"eventSource\":\"aws:sqs\",\"eventSourceARN\":\"arn:aws:sqs:us-east-1:123456789012:q\",\"awsRegion\":\"us-east-1\"}]}"},
        {EV + "ScheduledEvent", "{\"version\":\"0\",\"id\":\"i\",\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\","
            + "\"account\":\"123456789012\",\"time\":\"2019-10-08T16:53:06Z\",\"region\":\"us-east-1\","
            + "\"resources\":[\"arn:aws:events:us-east-1:123456789012:rule/r\"],\"detail\":{}}"},
        {EV + "S3Event", "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":\"us-east-1\","
            + "\"eventTime\":\"2019-10-08T16:53:06.000Z\",\"eventName\":\"ObjectCreated:Put\",\"userIdentity\":{\"principalId\":\"p\"},"
            + "\"requestParameters\":{\"sourceIPAddress\":\"127.0.0.1\"},\"responseElements\":{\"x-amz-request-id\":\"r\"},"
            + "\"s3\":{\"s3SchemaVersion\":\"1.0\",\"configurationId\":\"c\",\"bucket\":{\"name\":\"b\",\"ownerIdentity\":"
            + "{\"principalId\":\"p\"},\"arn\":\"arn:aws:s3:::b\"},\"object\":{\"key\":\"k\",\"size\":1,\"eTag\":\"e\","
            + "\"sequencer\":\"s\"}}}]}"},
    };

    // ---------------------------------------------------------------- environment

    /**
     * Replaces the JVM's view of the environment (System.getenv() and System.getenv(name), and
     * a ProcessBuilder's environment() once asked for) with {@code env}. Both getenv views read
     * java.lang.ProcessEnvironment.theEnvironment, so it is emptied and refilled in place.
     * The process's real (native) environment is not changed: a child process started without
     * asking for environment() (Runtime.exec) inherits the pre-started JVM's generic one.
     */
    @SuppressWarnings("unchecked")
    static void installEnvironment(Map<String, String> env) throws Exception {
        Class<?> pe = Class.forName("java.lang.ProcessEnvironment");
        Class<?> variable = Class.forName("java.lang.ProcessEnvironment$Variable");
        Class<?> value = Class.forName("java.lang.ProcessEnvironment$Value");
        Field field = pe.getDeclaredField("theEnvironment");
        Method variableOf = variable.getDeclaredMethod("valueOf", String.class);
        Method valueOf = value.getDeclaredMethod("valueOf", String.class);
        try {
            field.setAccessible(true);
            variableOf.setAccessible(true);
            valueOf.setAccessible(true);
        } catch (RuntimeException e) { // InaccessibleObjectException (Java 9+)
            die("cannot replace the environment: start the JVM with --add-opens java.base/java.lang=ALL-UNNAMED (" + e + ")");
        }
        Map<Object, Object> replacement = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : env.entrySet()) {
            // valueOf validates: no '=' or NUL in names, no NUL in values.
            replacement.put(variableOf.invoke(null, e.getKey()), valueOf.invoke(null, e.getValue()));
        }
        Map<Object, Object> theEnvironment = (Map<Object, Object>) field.get(null);
        synchronized (theEnvironment) {
            theEnvironment.clear();
            theEnvironment.putAll(replacement);
        }
        if (!System.getenv().equals(env)) {
            die("environment replacement did not take effect");
        }
    }

    /**
     * The JVM takes its default time zone from the native TZ at first use, which is the pre-started
     * process's TZ, not the function's. Re-derive it from the function's TZ.
     */
    private static void applyTimeZone(String tz) {
        if (tz == null || tz.isEmpty()) {
            return;
        }
        String id = tz.startsWith(":") ? tz.substring(1) : tz;
        int zi = id.indexOf("zoneinfo/");
        if (id.startsWith("/") && zi >= 0) {
            id = id.substring(zi + "zoneinfo/".length());
        }
        System.setProperty("user.timezone", id);
        TimeZone.setDefault(null); // next getDefault() reads user.timezone again
    }

    // ---------------------------------------------------------------- control socket

    private static byte[] readFrame(InputStream in) throws IOException {
        byte[] header = readFully(in, 4);
        long n = (header[0] & 0xffL) | (header[1] & 0xffL) << 8 | (header[2] & 0xffL) << 16 | (header[3] & 0xffL) << 24;
        if (n > 64L * 1024 * 1024) {
            throw new IOException("frame too large: " + n);
        }
        return readFully(in, (int) n);
    }

    private static byte[] readFully(InputStream in, int n) throws IOException {
        byte[] buf = new byte[n];
        int off = 0;
        while (off < n) {
            int r = in.read(buf, off, n - off);
            if (r < 0) {
                throw new EOFException("control socket closed after " + off + " of " + n + " bytes");
            }
            off += r;
        }
        return buf;
    }

    private static void die(String message) {
        System.err.println("sylph launcher: " + message);
        System.exit(70);
    }

    private static void debug(String format, Object... args) {
        if (DEBUG) {
            System.err.println("sylph launcher: " + String.format(format, args));
        }
    }
}
