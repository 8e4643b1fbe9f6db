"""Review of trust changes: `plan` (the program under the SDK's mock runtime: the only Pulumi import in the
package), `diff` between desired and deployed trust, and rendering as text, Markdown, Mermaid and DOT."""
