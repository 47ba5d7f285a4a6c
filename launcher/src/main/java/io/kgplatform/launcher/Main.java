/*
 * kgplatform local Neo4j launcher: Neo4j Community 5.26 (LTS) from Maven Central artifacts, no Docker, no tarball.
 *
 * Approach: Neo4j's OWN server entry point, not a hand-rolled one. org.neo4j.app:neo4j-server (on Maven Central,
 * same version as the kernel) holds the real server: CommunityBootstrapper starts the DBMS with the Bolt connector
 * (TCP and WebSocket on one port, which is how Neo4j Browser talks to the database) and Neo4j's Jetty HTTP
 * connector with its real modules: the discovery document at "/", the HTTP transactional endpoint and Query API,
 * and the Browser module, which serves the static files found under "browser/" on the classpath (the
 * org.neo4j.client:neo4j-browser jar). So behaviour matches a tarball install (same config names, same log files,
 * same auth), with nothing of ours to keep in step with Neo4j. The alternative (embedded
 * DatabaseManagementServiceBuilder + com.sun.net.httpserver for the Browser and a hand-written discovery JSON) would
 * have re-implemented what this artifact already does, and would lack the HTTP API.
 *
 * What this class adds on top of CommunityBootstrapper: a small CLI, a fixed set of local-only settings
 * (127.0.0.1 binding, no usage reports or telemetry, small transaction-log retention), the initial password for
 * user "neo4j" on first start (written the way `neo4j-admin dbms set-initial-password` does), port 0 resolved to a
 * free port (so the advertised addresses are right), APOC Core linked into <home>/plugins, and an atomically
 * written <home>/run/ready.json once Bolt accepts connections (deleted again on shutdown). It also serves the
 * static files in <home>/browser/ (style sheet and guide for Neo4j Browser, written by kgplatform/db/server.py
 * together with the settings that mount them) through the unmanaged extension in web/BrowserContent.java.
 *
 * Usage: Main --home DIR [--bolt-port N] [--http-port N] [--no-auth | --password-file F] [--pagecache 512m]
 * Heap size is a JVM flag (-Xmx), passed by the caller. SIGTERM/SIGINT shut the DBMS down cleanly.
 */
package io.kgplatform.launcher;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import io.kgplatform.launcher.web.BrowserContent;
import org.neo4j.configuration.Config;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.graphdb.config.Setting;
import org.neo4j.io.fs.DefaultFileSystemAbstraction;
import org.neo4j.kernel.impl.security.User;
import org.neo4j.kernel.internal.GraphDatabaseAPI;
import org.neo4j.kernel.internal.Version;
import org.neo4j.logging.NullLogProvider;
import org.neo4j.memory.EmptyMemoryTracker;
import org.neo4j.server.CommunityBootstrapper;
import org.neo4j.server.configuration.ServerSettings;
import org.neo4j.server.security.SecureHasher;
import org.neo4j.server.security.SystemGraphCredential;
import org.neo4j.server.security.auth.CommunitySecurityModule;
import org.neo4j.server.security.auth.FileUserRepository;

public final class Main {
    private static final String HOST = "127.0.0.1";
    private static final String INITIAL_USER = "neo4j";
    /** Name of the APOC Core jar (a link) in <home>/plugins. */
    private static final String APOC_JAR = "apoc-core.jar";
    /** Exit code for bad command-line arguments (Neo4j's own codes are 1-4). */
    private static final int USAGE_ERROR = 64;

    private Main() {}

    /** Parsed command line. */
    record Args(Path home, int boltPort, int httpPort, boolean auth, Path passwordFile, String pagecache) {
        static Args parse(String[] argv) {
            Path home = null;
            Path passwordFile = null;
            int boltPort = 7687;
            int httpPort = 7474;
            boolean noAuth = false;
            String pagecache = "512m";
            for (int i = 0; i < argv.length; i++) {
                String a = argv[i];
                switch (a) {
                    case "--home" -> home = Path.of(value(argv, ++i, a)).toAbsolutePath().normalize();
                    case "--bolt-port" -> boltPort = port(value(argv, ++i, a), a);
                    case "--http-port" -> httpPort = port(value(argv, ++i, a), a);
                    case "--no-auth" -> noAuth = true;
                    case "--password-file" -> passwordFile = Path.of(value(argv, ++i, a)).toAbsolutePath();
                    case "--pagecache" -> pagecache = value(argv, ++i, a);
                    default -> throw new IllegalArgumentException("unknown argument: " + a);
                }
            }
            if (home == null) {
                throw new IllegalArgumentException("--home DIR is required");
            }
            if (noAuth && passwordFile != null) {
                throw new IllegalArgumentException("--no-auth and --password-file exclude each other");
            }
            return new Args(home, boltPort, httpPort, !noAuth, passwordFile, pagecache);
        }

        private static String value(String[] argv, int i, String option) {
            if (i >= argv.length) {
                throw new IllegalArgumentException(option + " needs a value");
            }
            return argv[i];
        }

        private static int port(String text, String option) {
            try {
                int p = Integer.parseInt(text);
                if (p < 0 || p > 65535) {
                    throw new NumberFormatException();
                }
                return p;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(option + " wants a port 0-65535 (0 = any free port), got " + text);
            }
        }
    }

    public static void main(String[] argv) throws Exception {
        Args args;
        try {
            args = Args.parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("launcher: " + e.getMessage());
            System.exit(USAGE_ERROR);
            return;
        }
        Path runDir = args.home().resolve("run");
        Path ready = runDir.resolve("ready.json");
        for (String sub : new String[] {"conf", "data", "logs", "run", "plugins", "import"}) {
            Files.createDirectories(args.home().resolve(sub));
        }
        Files.deleteIfExists(ready);

        linkApoc(args.home().resolve("plugins"));
        Map<String, String> overrides = settings(args);
        if (args.auth() && args.passwordFile() != null) {
            writeInitialPasswordIfFirstStart(args, overrides);
        }

        // Where web/BrowserContent finds the files it serves (mounted by server.unmanaged_extension_classes).
        System.setProperty(BrowserContent.DIR_PROPERTY, args.home().resolve("browser").toString());
        CommunityBootstrapper bootstrapper = new CommunityBootstrapper();
        // Registered before start(): Neo4j's own hook (installed by start) stops the DBMS on SIGTERM/SIGINT.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteQuietly(ready), "kgp-ready-cleanup"));
        Path confFile = args.home().resolve("conf").resolve(Config.DEFAULT_CONFIG_FILE_NAME);
        int code = bootstrapper.start(args.home(), confFile, overrides, false, false);
        if (code != 0) {
            System.err.printf(
                    "launcher: Neo4j failed to start (exit code %d); see %s%n", code, args.home().resolve("logs"));
            System.exit(code);
            return;
        }

        try {
            var system = (GraphDatabaseAPI) bootstrapper.getDatabaseManagementService().database("system");
            var ports = system.getDependencyResolver().resolveDependency(ConnectorPortRegister.class);
            int boltPort = ports.getLocalAddress(ConnectorType.BOLT).getPort();
            int httpPort = ports.getLocalAddress(ConnectorType.HTTP).getPort();
            awaitTcp(boltPort);
            writeReady(ready, args, boltPort, httpPort);
            System.err.printf("launcher: ready bolt://%s:%d http://%s:%d/browser/%n", HOST, boltPort, HOST, httpPort);
        } catch (Exception e) {
            // Neo4j's threads would keep the JVM alive without a ready.json: exit instead (the hooks stop Neo4j).
            System.err.println("launcher: Neo4j started but is not usable: " + e);
            System.exit(1);
        }

        new CountDownLatch(1).await(); // serve until a signal runs the shutdown hooks
    }

    /** Local-only, quiet, small-footprint settings; they override <home>/conf/neo4j.conf. */
    static Map<String, String> settings(Args args) {
        Path home = args.home();
        Map<String, String> s = new LinkedHashMap<>();
        put(s, GraphDatabaseSettings.data_directory, home.resolve("data"));
        put(s, GraphDatabaseSettings.logs_directory, home.resolve("logs"));
        put(s, GraphDatabaseSettings.plugin_dir, home.resolve("plugins"));
        put(s, GraphDatabaseSettings.load_csv_file_url_root, home.resolve("import"));
        // Port 0 is resolved here rather than by Neo4j: the advertised addresses (discovery document at "/",
        // routing tables) must name the real port, and Neo4j would advertise the configured default instead.
        int boltPort = resolvePort(args.boltPort());
        int httpPort = resolvePort(args.httpPort());
        put(s, GraphDatabaseSettings.default_listen_address, HOST);
        put(s, GraphDatabaseSettings.default_advertised_address, HOST);
        put(s, BoltConnector.enabled, true);
        put(s, BoltConnector.listen_address, HOST + ":" + boltPort);
        put(s, BoltConnector.advertised_address, HOST + ":" + boltPort);
        put(s, HttpConnector.enabled, true);
        put(s, HttpConnector.listen_address, HOST + ":" + httpPort);
        put(s, HttpConnector.advertised_address, HOST + ":" + httpPort);
        put(s, HttpsConnector.enabled, false);
        put(s, GraphDatabaseSettings.auth_enabled, args.auth());
        put(s, GraphDatabaseSettings.pagecache_memory, args.pagecache());
        // Nothing phones home.
        put(s, GraphDatabaseSettings.udc_enabled, false);
        put(s, GraphDatabaseInternalSettings.udc_network_enabled, false);
        put(s, ServerSettings.allow_telemetry, false);
        // Keep the store small: short tx-log retention, no 256 MiB preallocated log files.
        put(s, GraphDatabaseSettings.keep_logical_logs, "64M size");
        put(s, GraphDatabaseSettings.logical_log_rotation_threshold, "16M");
        put(s, GraphDatabaseSettings.preallocate_logical_logs, false);
        // Bolt's Netty groups otherwise wait a 5 s quiet period twice on shutdown (10 s per stop).
        put(s, GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0);
        return s;
    }

    /** A free port on 127.0.0.1 when 0 is asked for (the window until Neo4j binds it is milliseconds). */
    private static int resolvePort(int port) {
        if (port != 0) {
            return port;
        }
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free port on " + HOST, e);
        }
    }

    private static void put(Map<String, String> map, Setting<?> setting, Object value) {
        map.put(setting.name(), String.valueOf(value));
    }

    /**
     * Sets the password of user neo4j before the system database exists, exactly as
     * {@code neo4j-admin dbms set-initial-password} does (an auth.ini read once when the system graph is created).
     * On later starts the password lives in the system database and the file is left alone.
     */
    static void writeInitialPasswordIfFirstStart(Args args, Map<String, String> overrides) throws Exception {
        Config config = Config.newBuilder()
                .set(GraphDatabaseSettings.neo4j_home, args.home())
                .setRaw(overrides)
                .build();
        Path systemStore = config.get(GraphDatabaseInternalSettings.databases_root_path).resolve("system");
        if (Files.exists(systemStore)) {
            return;
        }
        String password = Files.readString(args.passwordFile(), StandardCharsets.UTF_8).strip();
        int minimum = config.get(GraphDatabaseSettings.auth_minimum_password_length);
        if (password.codePoints().count() < minimum) {
            System.err.println("launcher: the password must have at least " + minimum + " characters");
            System.exit(USAGE_ERROR);
        }
        Path file = CommunitySecurityModule.getInitialUserRepositoryFile(config);
        Files.createDirectories(file.getParent());
        Files.deleteIfExists(file);
        try (var fs = new DefaultFileSystemAbstraction()) {
            var users = new FileUserRepository(fs, file, NullLogProvider.getInstance(), EmptyMemoryTracker.INSTANCE);
            users.start();
            users.create(new User(
                    INITIAL_USER,
                    null,
                    SystemGraphCredential.createCredentialForPassword(
                            password.getBytes(StandardCharsets.UTF_8), new SecureHasher()),
                    false,
                    false));
            users.shutdown();
        }
    }

    /**
     * Neo4j loads procedures only from jars in the plugins folder (never from the classpath), so the APOC Core jar
     * Maven put on our classpath is linked there (copied where links are not allowed). Its own dependencies are
     * visible through the parent class loader.
     */
    static void linkApoc(Path plugins) throws IOException {
        Path link = plugins.resolve(APOC_JAR);
        Path jar = null;
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            Path p = Path.of(entry);
            String name = p.getFileName() == null ? "" : p.getFileName().toString();
            if (name.startsWith("apoc-core-") && name.endsWith(".jar")) {
                jar = p.toAbsolutePath();
            }
        }
        if (Files.isSymbolicLink(link) || Files.exists(link)) {
            if (jar != null && Files.isSymbolicLink(link) && Files.readSymbolicLink(link).equals(jar)) {
                return;
            }
            Files.delete(link);
        }
        if (jar == null) {
            return;
        }
        try {
            Files.createSymbolicLink(link, jar);
        } catch (UnsupportedOperationException | IOException e) {
            Files.copy(jar, link, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** The port register says the connector is bound; this proves it accepts a connection. */
    private static void awaitTcp(int port) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (true) {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(HOST, port), 1000);
                return;
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("Bolt port " + port + " does not accept connections", e);
                }
                Thread.sleep(50);
            }
        }
    }

    private static void writeReady(Path ready, Args args, int boltPort, int httpPort) throws IOException {
        String json = "{"
                + "\"pid\": " + ProcessHandle.current().pid()
                + ", \"bolt_port\": " + boltPort
                + ", \"http_port\": " + httpPort
                + ", \"bolt_uri\": " + quote("bolt://" + HOST + ":" + boltPort)
                + ", \"http_url\": " + quote("http://" + HOST + ":" + httpPort + "/browser/")
                + ", \"auth\": " + args.auth()
                + ", \"neo4j_version\": " + quote(Version.getNeo4jVersion())
                + "}\n";
        Path tmp = ready.resolveSibling(ready.getFileName() + ".tmp");
        Files.writeString(tmp, json, StandardCharsets.UTF_8);
        try {
            Files.move(tmp, ready, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, ready, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // the Python side treats a ready.json whose pid is gone as stale
        }
    }
}
