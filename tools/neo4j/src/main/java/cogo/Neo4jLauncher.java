package cogo;

import java.io.IOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.neo4j.configuration.Config;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Label;
import org.neo4j.graphdb.Node;
import org.neo4j.graphdb.Transaction;
import org.neo4j.io.ByteUnit;
import org.neo4j.io.fs.DefaultFileSystemAbstraction;
import org.neo4j.kernel.impl.security.User;
import org.neo4j.logging.Level;
import org.neo4j.logging.NullLogProvider;
import org.neo4j.logging.log4j.Log4jLogProvider;
import org.neo4j.memory.EmptyMemoryTracker;
import org.neo4j.server.security.SecureHasher;
import org.neo4j.server.security.SystemGraphCredential;
import org.neo4j.server.security.auth.CommunitySecurityModule;
import org.neo4j.server.security.auth.FileUserRepository;

/**
 * Starts an embedded Neo4j (community) DBMS with a Bolt connector on 127.0.0.1:PORT.
 *
 * <pre>
 *   Neo4jLauncher --port N --data DIR [--password PW]
 * </pre>
 *
 * DIR is used as the Neo4j home directory (store in DIR/data, logs in DIR/logs).
 * Without --password, authentication is disabled. With it, authentication is enabled and
 * the password of user "neo4j" is set to PW (no password change required).
 *
 * stdout carries exactly one line, "NEO4J READY bolt://127.0.0.1:PORT", once Bolt accepts
 * queries against the default database. Everything else goes to stderr or DIR/logs.
 * Exit codes: 0 after a clean shutdown on SIGTERM/SIGINT, 2 if the port is in use,
 * 64 for bad arguments, 1 for any other start-up failure.
 */
public final class Neo4jLauncher {
    private static final String HOST = "127.0.0.1";
    private static final String USER = "neo4j";

    private Neo4jLauncher() {}

    public static void main(String[] args) {
        Integer port = null;
        Path dir = null;
        String password = null;
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--port" -> port = parsePort(value(args, ++i, a));
                    case "--data" -> dir = Path.of(value(args, ++i, a)).toAbsolutePath().normalize();
                    case "--password" -> password = value(args, ++i, a);
                    case "-h", "--help" -> {
                        System.err.println("usage: Neo4jLauncher --port N --data DIR [--password PW]");
                        System.exit(0);
                    }
                    default -> throw new IllegalArgumentException("unknown argument: " + a);
                }
            }
            if (port == null || dir == null) {
                throw new IllegalArgumentException("--port and --data are required");
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("--port must be 1..65535, got " + port);
            }
            if (password != null && password.isEmpty()) {
                throw new IllegalArgumentException("--password must not be empty");
            }
        } catch (IllegalArgumentException e) {
            System.err.println("neo4j-launcher: " + e.getMessage());
            System.err.println("usage: Neo4jLauncher --port N --data DIR [--password PW]");
            System.exit(64);
            return;
        }

        if (!portFree(port)) {
            portInUse(port);
        }

        try {
            run(port, dir, password);
        } catch (Throwable t) {
            if (causedByBind(t)) {
                portInUse(port);
            }
            System.err.println("neo4j-launcher: failed to start Neo4j: " + t);
            t.printStackTrace(System.err);
            System.exit(1);
        }
    }

    private static void run(int port, Path dir, String password) throws Exception {
        Files.createDirectories(dir);
        boolean auth = password != null;
        boolean freshDbms = !Files.exists(dir.resolve("data").resolve("databases").resolve("system"));
        if (auth && freshDbms) {
            // Same as `neo4j-admin dbms set-initial-password`: the system database picks up
            // data/dbms/auth.ini when it is created, so no default password is ever live.
            writeInitialPassword(dir, password);
        }

        Log4jLogProvider userLog = new Log4jLogProvider(System.err, Level.WARN);
        SocketAddress bolt = new SocketAddress(HOST, port);
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(dir)
                .setUserLogProvider(userLog)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, bolt)
                .setConfig(BoltConnector.advertised_address, bolt)
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(HttpConnector.enabled, false)
                .setConfig(HttpsConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, auth)
                .setConfig(GraphDatabaseSettings.auth_minimum_password_length, 1)
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(64))
                .setConfig(GraphDatabaseSettings.memory_transaction_global_max_size, ByteUnit.mebiBytes(256))
                .setConfig(GraphDatabaseSettings.memory_transaction_max_size, ByteUnit.mebiBytes(128))
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                .setConfig(GraphDatabaseSettings.logical_log_rotation_threshold, ByteUnit.mebiBytes(16))
                .setConfig(GraphDatabaseSettings.keep_logical_logs, "64M size")
                // Netty's default 5 s quiet period (boss + worker group) makes shutdown take 10 s.
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .build();

        AtomicBoolean stopped = new AtomicBoolean();
        Runnable stop = () -> {
            if (stopped.compareAndSet(false, true)) {
                try {
                    dbms.shutdown();
                } catch (Throwable t) {
                    System.err.println("neo4j-launcher: error during shutdown: " + t);
                }
                userLog.close();
            }
        };
        // SIGTERM/SIGINT: shut down cleanly and exit 0 (a plain shutdown hook would exit 143/130).
        for (String sig : new String[] {"TERM", "INT"}) {
            sun.misc.Signal.handle(new sun.misc.Signal(sig), s -> {
                stop.run();
                System.exit(0);
            });
        }
        Runtime.getRuntime().addShutdownHook(new Thread(stop, "neo4j-shutdown"));

        String dbName = dbms.listDatabases().contains(GraphDatabaseSettings.DEFAULT_DATABASE_NAME)
                ? GraphDatabaseSettings.DEFAULT_DATABASE_NAME
                : dbms.listDatabases().stream().filter(n -> !n.equals("system")).findFirst().orElseThrow();
        GraphDatabaseService db = dbms.database(dbName);
        if (!db.isAvailable(TimeUnit.MINUTES.toMillis(2))) {
            throw new IllegalStateException("database '" + dbName + "' did not become available");
        }
        if (auth && !freshDbms) {
            ensurePassword(dbms, password);
        }

        System.out.println("NEO4J READY bolt://" + HOST + ":" + port);
        System.out.flush();

        new CountDownLatch(1).await(); // until a signal ends the JVM
    }

    /** Writes data/dbms/auth.ini for user neo4j, like `neo4j-admin dbms set-initial-password`. */
    private static void writeInitialPassword(Path home, String password) throws Exception {
        Config config = Config.newBuilder().set(GraphDatabaseSettings.neo4j_home, home).build();
        Path file = CommunitySecurityModule.getInitialUserRepositoryFile(config);
        try (DefaultFileSystemAbstraction fs = new DefaultFileSystemAbstraction()) {
            if (fs.fileExists(file)) {
                fs.deleteFile(file);
            }
            FileUserRepository repo =
                    new FileUserRepository(fs, file, NullLogProvider.getInstance(), EmptyMemoryTracker.INSTANCE);
            repo.start();
            SystemGraphCredential cred = SystemGraphCredential.createCredentialForPassword(
                    password.getBytes(StandardCharsets.UTF_8), new SecureHasher());
            repo.create(new User(USER, null, cred, false, false));
            repo.shutdown();
        }
    }

    /** Existing store: make the neo4j user's password PW (it may have been set differently before). */
    private static void ensurePassword(DatabaseManagementService dbms, String password) {
        GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        if (passwordAlreadySet(system, password)) {
            return; // the common case; skips planning a Cypher admin command (~2-3 s on a cold JVM)
        }
        system.executeTransactionally(
                "ALTER USER " + USER + " SET PLAINTEXT PASSWORD $pw CHANGE NOT REQUIRED",
                Map.of("pw", password));
    }

    /** True if user neo4j exists in the system graph with password PW and no change required. */
    private static boolean passwordAlreadySet(GraphDatabaseService system, String password) {
        try (Transaction tx = system.beginTx()) {
            Node user = tx.findNode(Label.label("User"), "name", USER);
            if (user == null || Boolean.TRUE.equals(user.getProperty("passwordChangeRequired", false))) {
                return false;
            }
            Object serialized = user.getProperty("credentials", null);
            return serialized instanceof String str
                    && SystemGraphCredential.deserialize(str, new SecureHasher())
                            .matchesPassword(password.getBytes(StandardCharsets.UTF_8));
        } catch (Exception e) {
            return false; // unknown layout: fall back to ALTER USER
        }
    }

    private static String value(String[] args, int i, String flag) {
        if (i >= args.length) {
            throw new IllegalArgumentException(flag + " needs a value");
        }
        return args[i];
    }

    private static int parsePort(String s) {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--port must be a number, got '" + s + "'");
        }
    }

    private static boolean portFree(int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(InetAddress.getByName(HOST), port));
            return true;
        } catch (BindException e) {
            return false;
        } catch (IOException e) {
            return true; // let Neo4j report whatever this is
        }
    }

    private static boolean causedByBind(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof BindException
                    || c.getClass().getSimpleName().equals("PortBindException")
                    || String.valueOf(c.getMessage()).contains("Address already in use")) {
                return true;
            }
        }
        return false;
    }

    private static void portInUse(int port) {
        System.err.println("neo4j-launcher: ERROR: port " + port + " on " + HOST
                + " is already in use; cannot start Bolt connector");
        System.err.flush();
        Runtime.getRuntime().halt(2);
    }
}
