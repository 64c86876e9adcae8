import { VirtualProvider } from '@platformatic/vfs';
import type { MkdirOptions, ReaddirOptions } from '@platformatic/vfs';
import type { VfsDirent, VfsStats } from '../stats.js';

/**
 * A provider whose work is synchronous underneath (memory, SQLite): its async core answers from the sync
 * methods, which subclasses implement once.
 */
export abstract class SyncBackedProvider<Handle> extends VirtualProvider {
  abstract override statSync(path: string): VfsStats;
  abstract override lstatSync(path: string): VfsStats;
  abstract override readdirSync(path: string, options?: ReaddirOptions): string[] | VfsDirent[];
  abstract override mkdirSync(path: string, options?: MkdirOptions): string | undefined;
  abstract override rmdirSync(path: string): void;
  abstract override unlinkSync(path: string): void;
  abstract override renameSync(oldPath: string, newPath: string): void;
  abstract override openSync(path: string, flags?: string | number, mode?: number): Handle;
  abstract override readlinkSync(path: string): string;
  abstract override symlinkSync(target: string, path: string): void;
  abstract override realpathSync(path: string): string;
  abstract override accessSync(path: string): void;
  abstract override existsSync(path: string): boolean;

  override async stat(path: string): Promise<VfsStats> {
    return this.statSync(path);
  }
  override async lstat(path: string): Promise<VfsStats> {
    return this.lstatSync(path);
  }
  override async readdir(path: string, options?: ReaddirOptions): Promise<string[] | VfsDirent[]> {
    return this.readdirSync(path, options);
  }
  override async mkdir(path: string, options?: MkdirOptions): Promise<string | undefined> {
    return this.mkdirSync(path, options);
  }
  override async rmdir(path: string): Promise<void> {
    this.rmdirSync(path);
  }
  override async unlink(path: string): Promise<void> {
    this.unlinkSync(path);
  }
  override async rename(oldPath: string, newPath: string): Promise<void> {
    this.renameSync(oldPath, newPath);
  }
  override async open(path: string, flags?: string | number, mode?: number): Promise<Handle> {
    return this.openSync(path, flags, mode);
  }
  override async readlink(path: string): Promise<string> {
    return this.readlinkSync(path);
  }
  override async symlink(target: string, path: string): Promise<void> {
    this.symlinkSync(target, path);
  }
  override async realpath(path: string): Promise<string> {
    return this.realpathSync(path);
  }
  override async access(path: string): Promise<void> {
    this.accessSync(path);
  }
  override async exists(path: string): Promise<boolean> {
    return this.existsSync(path);
  }
}
