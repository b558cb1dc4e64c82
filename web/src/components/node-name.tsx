import { Link, paths } from '../lib/router';

/** The node that runs a job, linked to the nodes page; a dash when no node runs it. */
export function NodeName({ node }: { node: string | null | undefined }) {
  // Servers before leases send no node.
  if (node == null) return <span className="muted">—</span>;
  return (
    <Link to={paths.nodes} data-node={node}>
      <code>{node}</code>
    </Link>
  );
}
