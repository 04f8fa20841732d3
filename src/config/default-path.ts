/** Litestream's default config file, read when neither -config nor $LITESTREAM_CONFIG names one. */
export const DEFAULT_CONFIG_PATH = '/etc/litestream.yml';
