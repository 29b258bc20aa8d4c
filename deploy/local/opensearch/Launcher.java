package auditlog.local;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

/**
 * Starts one OpenSearch node from the server's Maven Central jars.
 *
 * <p>OpenSearch's own distribution is an archive outside Maven Central; its jars are on Maven
 * Central, but the plugins a distribution installs as modules (HTTP, analysis) would need that
 * archive's module directories. A node can instead take them on its classpath, through Node's
 * protected constructor, which is what this class is for. Settings come from
 * {@code <home>/config/opensearch.yml} as in a distribution; opensearch.sh renders it.
 *
 * <p>Usage: {@code Launcher <home>}. SIGTERM closes the node (flushing its shards) and exits.
 */
public final class Launcher extends Node {
    private static final List<Class<? extends org.opensearch.plugins.Plugin>> PLUGINS =
        List.of(Netty4Plugin.class, CommonAnalysisPlugin.class);

    private Launcher(Environment environment) {
        super(environment, PLUGINS, true);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: Launcher <home>");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            Settings.builder().put("path.home", home.toString()).build(),
            java.util.Map.of(),
            home.resolve("config"),
            () -> "auditlog");
        LogConfigurator.configure(environment);
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(environment.settings()));

        Launcher node = new Launcher(environment);
        // Node threads are daemons: without a live non-daemon thread the JVM would exit as soon
        // as main returns, so main waits here until the shutdown hook has closed the node.
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "auditlog-opensearch-shutdown"));
        node.start();
        // One node holds no replica, so indices default to none and their health is green, not
        // yellow. Only a cluster setting in the cluster state sets that default (the node's
        // opensearch.yml cannot), and readiness checks (opensearch.sh ping) wait for it.
        try {
            node.client().admin().cluster().prepareUpdateSettings()
                .setPersistentSettings(Settings.builder().put("cluster.default_number_of_replicas", 0).build())
                .get(TimeValue.timeValueSeconds(120));
        } catch (Exception e) {
            e.printStackTrace();
            System.exit(1);
        }
        stopped.await();
    }
}
