export { EtcdCatalog } from './etcd/etcd-catalog.js';
