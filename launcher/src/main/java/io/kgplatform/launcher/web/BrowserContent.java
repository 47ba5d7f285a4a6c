/*
 * Static content for Neo4j Browser, served by the Neo4j server itself: the platform's Graph Style Sheet and its
 * guide, so that `:style http://127.0.0.1:<http port>/kgp/browser/kgplatform.grass` and
 * `:play http://127.0.0.1:<http port>/kgp/browser/guide.html` work with nothing else running.
 *
 * Neo4j has no setting for static files; an unmanaged extension (a JAX-RS package mounted by
 * server.unmanaged_extension_classes) is its documented way to add HTTP resources. kgplatform/db/server.py writes
 * the files into <home>/browser/ and the settings (mount point, auth allowlist for the path, Browser's
 * post_connect_cmd) into <home>/conf/neo4j.conf; Main tells this class where the folder is.
 *
 * Read-only: GET of one plain file name directly in that folder, with a known extension; everything else is 404.
 */
package io.kgplatform.launcher.web;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Pattern;
import javax.ws.rs.GET;
import javax.ws.rs.PathParam;
import javax.ws.rs.core.Response;

@javax.ws.rs.Path("/")
public class BrowserContent {
    /** System property naming the folder served (set by Main to <home>/browser). */
    public static final String DIR_PROPERTY = "kgplatform.browser.dir";

    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_-]*(\\.[A-Za-z0-9]+)+");
    private static final Map<String, String> TYPES = Map.of(
            "grass", "text/plain; charset=utf-8",
            "html", "text/html; charset=utf-8",
            "md", "text/markdown; charset=utf-8",
            "cypher", "text/plain; charset=utf-8",
            "txt", "text/plain; charset=utf-8",
            "json", "application/json; charset=utf-8",
            "css", "text/css; charset=utf-8",
            "png", "image/png",
            "svg", "image/svg+xml");

    @GET
    @javax.ws.rs.Path("{name}")
    public Response file(@PathParam("name") String name) {
        String dirName = System.getProperty(DIR_PROPERTY);
        if (dirName == null || name == null || !NAME.matcher(name).matches()) {
            return notFound();
        }
        String type = TYPES.get(name.substring(name.lastIndexOf('.') + 1).toLowerCase());
        Path dir = Path.of(dirName).toAbsolutePath().normalize();
        Path file = dir.resolve(name).normalize();
        if (type == null || !dir.equals(file.getParent()) || !Files.isRegularFile(file)) {
            return notFound();
        }
        try {
            return Response.ok(Files.readAllBytes(file), type)
                    .header("Cache-Control", "no-cache")
                    .header("X-Content-Type-Options", "nosniff")
                    .build();
        } catch (IOException e) {
            return notFound();
        }
    }

    private static Response notFound() {
        return Response.status(Response.Status.NOT_FOUND).type("text/plain").entity("not found\n").build();
    }
}
