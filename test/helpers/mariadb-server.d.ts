export declare const INSTALL_DB: string;
export declare const MARIADBD: string;
export interface MariadbLayout {
  root: string;
  dataDir: string;
  tmp: string;
  errorLog: string;
}
export declare function installMariadb(prefix: string): MariadbLayout;
export declare function mariadbdArgs(
  layout: MariadbLayout,
  options: { port: number; serverId: number; bufferPool?: string; logFileSize?: string; extraArgs?: string[] },
): string[];
